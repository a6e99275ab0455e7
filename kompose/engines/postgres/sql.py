"""PostgreSQL's pure builders under one name: tools.py (connection, names, argv, failures) and
scripts.py (the SQL of the safe import). Everything here is data; nothing runs."""

from kompose.engines.postgres.scripts import *  # noqa: F401,F403
from kompose.engines.postgres.tools import *  # noqa: F401,F403
