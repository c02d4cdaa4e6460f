"""Gemini's errors in canonical terms: our status, retry policy and ``Retry-After``. No I/O.

Google's error object (``{"error": {code, message, status, details}}``) is kept in
``metadata.raw``; its ``status`` decides retries as much as the HTTP status does. Gemini can
also send that object with HTTP 200, in place of a response or a stream event.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from switchyard.errors import (
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)

_json_decode = msgspec.json.decode


def _error_object(body: bytes) -> Any:
    """Gemini's ``{"error": {code, message, status, details}}``, sometimes inside a list."""
    try:
        value = _json_decode(body)
    except msgspec.DecodeError:
        return body[:2000].decode("utf-8", "replace") or None
    if isinstance(value, list) and value:
        value = value[0]
    if isinstance(value, dict) and "error" in value:
        return value["error"]
    return value


def reported_error(provider: str, error: dict[str, Any]) -> UpstreamError:
    """An error sent in place of a response (or stream event) that was otherwise a success."""
    message = error.get("message") or error.get("status") or "unknown error"
    return UpstreamError(f"{provider} reported an error: {message}", provider=provider, raw=error)


def map_gemini_error(
    provider: str, status: int, headers: Mapping[str, str], body: bytes
) -> UpstreamError:
    """Keep Google's error in metadata.raw; pick our status and retry policy."""
    raw = _error_object(body)
    detail = raw.get("message") if isinstance(raw, dict) else raw
    code = raw.get("status") if isinstance(raw, dict) else None
    message = f"{provider} returned HTTP {status}" + (f" {code}" if code else "")
    if detail:
        message += f": {detail}"
    retry_after = _retry_after(headers, raw)
    common: dict[str, Any] = {"provider": provider, "upstream_status": status, "raw": raw}
    if status == 429 or code == "RESOURCE_EXHAUSTED":
        return UpstreamRateLimited(message, retry_after=retry_after, **common)
    if status == 504 or code == "DEADLINE_EXCEEDED":
        return UpstreamTimeout(message, **common)
    if status == 503 or code == "UNAVAILABLE":
        return UpstreamUnavailable(message, retry_after=retry_after, **common)
    if status in (400, 413, 422) and code != "FAILED_PRECONDITION":
        # INVALID_ARGUMENT: the request itself is at fault; another provider would refuse it.
        # (FAILED_PRECONDITION is Google's "not available in your region / plan": not ours.)
        return UpstreamError(message, status=status, retryable=False, **common)
    return UpstreamError(message, **common)


_DELAY = re.compile(r"^(?P<seconds>\d+(?:\.\d+)?)s$")


def _retry_after(headers: Mapping[str, str], raw: Any) -> float | None:
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
    # Quota errors carry a google.rpc.RetryInfo detail ("retryDelay": "37s").
    details = raw.get("details") if isinstance(raw, dict) else None
    for detail in details if isinstance(details, list) else ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        match = _DELAY.match(delay) if isinstance(delay, str) else None
        if match:
            return float(match.group("seconds"))
    return None
