"""What the web pages show, computed from accounting rollups and the live health tracker.

Nothing here runs on the API request path. Token counts come from the per-day rollups the
usage writer keeps (``activity_daily``, ``app_activity_daily``), never from the generations
table; latency, throughput and uptime come from the health tracker, live or as the samples
:class:`~switchyard.stats.health_history.HealthRecorder` stores periodically.
"""
