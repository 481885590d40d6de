"""Shared test helpers: tool requirements, an in-process server, real clients."""
