"""Executing a Plan: outcomes, the hook sequence, the stack run with its step handlers, --jobs."""
