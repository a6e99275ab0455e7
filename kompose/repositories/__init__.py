"""Off-host copies: restic repositories (push, pull, list, forget, check), argv built by pure functions
(restic.py), run through the one process runner (client.py)."""
