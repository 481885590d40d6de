"""The composition root: builds every component once and starts them in order."""
