"""Layer 3: asyncio adapters around the sans-IO cores (sockets, timers, tasks)."""
