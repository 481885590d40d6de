"""Gifts: the catalogue split rules, the gift service and its routes."""
