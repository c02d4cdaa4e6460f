"""Turning a request into an ordered list of endpoints to try."""
