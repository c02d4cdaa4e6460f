"""Observability: Prometheus metrics, structured logs with request ids, OpenTelemetry traces.

    request_context   the current request's id (a context variable)
    logs              JSON or text log lines, request ids stamped, secrets masked
    metrics           Prometheus counters and histograms, circuit states read at scrape
    tracing           one GenAI-convention span per generation (optional OTLP export)
    telemetry         all of them together, and the observer the meter reports to

The HTTP side (request ids, request metrics, joining a caller's trace) is the pure ASGI
middleware in ``switchyard.server.middleware``.
"""

from switchyard.observability.metrics import Metrics
from switchyard.observability.telemetry import Telemetry

__all__ = ["Metrics", "Telemetry"]
