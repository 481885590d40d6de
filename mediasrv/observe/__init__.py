"""Observability: stream monitor, viewer sessions, analytics, metrics and stats routes."""
