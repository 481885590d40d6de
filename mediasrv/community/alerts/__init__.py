"""Go-live alerts (SSE feeds) and outgoing event webhooks."""
