"""Delivery: HLS and LL-HLS muxing per stream and its HTTP routes."""
