"""Running things on the host: processes (hooks, compose, zstd) and atomic files."""
