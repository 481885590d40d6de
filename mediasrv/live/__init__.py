"""Layer 1: the rules of live interaction (chat, moderation, gifts). Pure: stdlib only,
time passed in."""
