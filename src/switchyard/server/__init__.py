"""The HTTP server: app factory (app.py), routes, thin handlers, SSE.

Kept free of imports so that importing any one server module (as the web pages do) does not
pull in the whole app, and with it the pages themselves, in a cycle.
"""
