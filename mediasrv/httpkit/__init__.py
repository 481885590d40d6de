"""Shared HTTP helpers every feature's routes use: errors, validation, OpenAPI, URLs."""
