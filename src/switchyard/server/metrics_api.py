"""``GET /metrics``: the Prometheus text exposition.

Who may scrape is the ``metrics`` setting:

- ``public`` (the default): metrics carry no secrets and no user input, only catalog ids,
  route templates and counts;
- ``management``: a management key of the operator's ``default`` account, sent as
  ``Authorization: Bearer`` (Prometheus's ``authorization`` scrape option). Metrics span
  every account, so no tenant's key will do;
- ``off``: 404, as if the route did not exist.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from switchyard.accounting.keys import DEFAULT_ACCOUNT
from switchyard.errors import Forbidden, NotFound
from switchyard.server.state import state_of


async def metrics(request: Request) -> Response:
    state = state_of(request)
    access = state.settings.metrics
    if access == "off":
        raise NotFound(f"No route for {request.method} {request.url.path}")
    if access == "management":
        key = await state.keys.management_key(request.headers.get("authorization"))
        if key.account_id != DEFAULT_ACCOUNT:
            raise Forbidden("Metrics cover every account: use a management key of the operator")
    body, content_type = state.telemetry.metrics.render(request.headers.get("accept"))
    return Response(body, media_type=content_type)
