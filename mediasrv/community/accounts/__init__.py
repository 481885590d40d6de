"""Accounts: users, tokens, follows, creator settings, covers."""
