"""kompose: back up, restore and operate many Docker Compose stacks on one host."""

__version__ = "0.1.0"
