"""Telling people: notifications (apprise), dead-man's-switch pings, Prometheus textfile metrics."""
