"""The HTTP server: app factory, routes, thin handlers, SSE."""

from switchyard.server.app import create_app

__all__ = ["create_app"]
