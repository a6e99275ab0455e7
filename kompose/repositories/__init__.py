"""Off-host copies of dumps: restic repositories (argv in restic.py, processes in client.py)."""
