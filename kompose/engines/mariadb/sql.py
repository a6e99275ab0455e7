"""MariaDB's pure builders under one name: tools.py (connection, names, argv) and scripts.py (the
shell scripts of the safe import). Everything here is data; nothing runs."""

from kompose.engines.mariadb.scripts import *  # noqa: F401,F403
from kompose.engines.mariadb.tools import *  # noqa: F401,F403
