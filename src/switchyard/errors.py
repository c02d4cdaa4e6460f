"""Every error Switchyard reports to a client, and how it renders.

    SwitchyardError                  status, message, metadata; renders as the API error shape
    ├── InvalidRequest        400    malformed JSON, wrong types, bad values; names the field
    ├── Unauthorized          401    missing, unknown, disabled or expired key
    ├── PaymentRequired       402    not enough credit for the request
    ├── Forbidden             403    the key may not do this
    ├── NotFound              404    unknown route, model or resource
    ├── StreamTooLong         408    a stream ran past max_stream_seconds (in-band only)
    ├── PayloadTooLarge       413    body over the configured limit
    ├── RateLimited           429    too many requests; carries Retry-After
    ├── NoEndpoint            503    no available provider can serve the request
    ├── Overloaded            503    a local queue is full; carries Retry-After
    ├── ShuttingDown          503    the server is stopping; carries Retry-After
    ├── StorageUnavailable    503    the database cannot be reached; carries Retry-After
    └── UpstreamError         502    a provider failed; keeps its name, status and body
        ├── UpstreamRateLimited   429
        ├── UpstreamUnavailable   503
        └── UpstreamTimeout       408

The body is always ``{"error": {"code": <status>, "message": ..., "metadata": {...}}}``
(the OpenRouter ``ErrorResponse`` shape) and is produced by :func:`error_body` only.
Foreign exceptions are translated where they cross a boundary (upstream I/O, storage,
request decoding), never deeper in the stack.
"""

from __future__ import annotations

from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()


class SwitchyardError(Exception):
    status: int = 500
    headers: dict[str, str]

    def __init__(
        self,
        message: str,
        *,
        metadata: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.message = message
        self.metadata = metadata
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.status, "message": self.message}
        if self.metadata:
            error["metadata"] = self.metadata
        return {"error": error}


class InvalidRequest(SwitchyardError):
    status = 400

    def __init__(self, message: str, *, field: str | None = None, **kw: Any) -> None:
        metadata = kw.pop("metadata", None) or {}
        if field is not None:
            metadata["field"] = field
        super().__init__(message, metadata=metadata or None, **kw)
        self.field = field


class Unauthorized(SwitchyardError):
    status = 401


class PaymentRequired(SwitchyardError):
    status = 402


class Forbidden(SwitchyardError):
    status = 403


class NotFound(SwitchyardError):
    status = 404


class PayloadTooLarge(SwitchyardError):
    status = 413


class _RetryAfter(SwitchyardError):
    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
        if retry_after is not None:
            # Retry-After takes whole seconds; round up so clients never retry too early.
            self.headers.setdefault("Retry-After", str(max(1, int(-(-retry_after // 1)))))


class RateLimited(_RetryAfter):
    status = 429


class Overloaded(_RetryAfter):
    status = 503


class ShuttingDown(_RetryAfter):
    status = 503


class StorageUnavailable(_RetryAfter):
    status = 503


class StreamTooLong(SwitchyardError):
    status = 408


class NoEndpoint(SwitchyardError):
    status = 503


class UpstreamError(_RetryAfter):
    """A provider failed. ``retryable`` says whether another provider may be tried."""

    status = 502
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        upstream_status: int | None = None,
        raw: Any = None,
        retryable: bool | None = None,
        **kw: Any,
    ) -> None:
        metadata = kw.pop("metadata", None) or {}
        metadata["provider_name"] = provider
        if upstream_status is not None:
            metadata["upstream_status"] = upstream_status
        if raw is not None:
            metadata["raw"] = raw
        super().__init__(message, metadata=metadata, **kw)
        self.provider = provider
        self.upstream_status = upstream_status
        if retryable is not None:
            self.retryable = retryable


class UpstreamRateLimited(UpstreamError):
    status = 429


class UpstreamUnavailable(UpstreamError):
    status = 503


class UpstreamTimeout(UpstreamError):
    status = 408


def error_body(exc: SwitchyardError) -> bytes:
    return _encoder.encode(exc.to_dict())
