"""PostgreSQL: tool argv, database names, the swap and rollback scripts."""
