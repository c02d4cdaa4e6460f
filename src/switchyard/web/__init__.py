"""Server-rendered pages: models, a model's tabs, providers, rankings, activity, keys, chat.

Pages are Jinja2 templates with autoescaping, over the same state the API uses; the
browser gets plain HTML, one stylesheet, a little JavaScript and the vendored uPlot charts.
"""
