"""Backstage and ending a live from the studio; who may play a private live (issue 17)."""
