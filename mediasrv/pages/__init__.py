"""The browser pages and their static assets."""
