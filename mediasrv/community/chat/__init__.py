"""Live chat: pure rules, rooms service, WebSocket routes."""
