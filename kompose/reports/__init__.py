"""Read-only reports: --list, db:list, hooks, status, cron."""
