"""Hooks: points and their policy, where hooks are defined, and running them."""
