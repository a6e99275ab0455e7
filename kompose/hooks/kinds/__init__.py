"""One module per hook kind (bash, sql, http, tcp, exec)."""
