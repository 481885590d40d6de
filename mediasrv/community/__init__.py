"""Community features: accounts, chat, moderation, gifts, alerts and discovery."""
