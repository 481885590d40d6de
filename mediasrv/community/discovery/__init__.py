"""Discovery: the list of lives, thumbnails, the go-live feed routes."""
