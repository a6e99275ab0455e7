"""MySQL: the MariaDB engine with MySQL's tool names (mysqldump, mysql)."""

from __future__ import annotations

from kompose.engines.mariadb import MariaDBEngine


class MySQLEngine(MariaDBEngine):
    name = "mysql"
    flavour = "mysql"


ENGINE = MySQLEngine()
