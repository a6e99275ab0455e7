"""MariaDB (and MySQL): the tools run inside the database container, and the table-by-table swap."""
