"""Layer 4: the aiohttp application — the composition root of the whole server."""
