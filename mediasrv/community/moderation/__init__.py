"""Chat moderation: rules, per-creator policy service, routes."""
