"""Database engines: the tools each runs inside its container and the SQL of its safe swap."""
