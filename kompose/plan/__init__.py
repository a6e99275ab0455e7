"""Plans: frozen steps, the per-stack and run-wide model, and their rendering. Nothing here runs."""
