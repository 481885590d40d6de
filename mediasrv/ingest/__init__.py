"""Ingest: the RTMP/RTMPS listener and publish authorisation."""
