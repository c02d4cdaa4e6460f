"""Anthropic Messages API (``POST {base_url}/v1/messages``).

This module holds the adapter the registry builds (credentials are the OpenAI-style key and
base URL); the translation lives beside it: ``anthropic_request`` (request body) and
``anthropic_response`` (response and stream).
"""

from __future__ import annotations

from typing import Any

import msgspec

from switchyard.catalog import Catalog, Endpoint, ProviderSpec
from switchyard.errors import UpstreamError, UpstreamRateLimited, UpstreamUnavailable
from switchyard.providers.anthropic_request import build_body
from switchyard.providers.anthropic_response import (
    Block,
    StreamTranslator,
    event_decoder,
    message_decoder,
    parse_message,
)
from switchyard.providers.base import StreamState, UpstreamRequest
from switchyard.providers.openai import Credentials, map_openai_error
from switchyard.sse import SSEEvent, SSEParser
from switchyard.wire.chat import ChatChunk, ChatRequest, ChatResult

__all__ = ["AnthropicAdapter"]

API_VERSION = "2023-06-01"

_encode = msgspec.json.encode


# --- adapter ------------------------------------------------------------------------------


class AnthropicAdapter:
    """Messages API with an ``x-api-key`` and a pinned ``anthropic-version``."""

    def __init__(self, spec: ProviderSpec, credentials: Credentials, catalog: Catalog) -> None:
        self.spec = spec
        self.credentials = credentials
        self._catalog = catalog
        self._url = f"{credentials.base_url}/v1/messages"
        self._headers = {
            "Content-Type": "application/json",
            "Accept-Encoding": "gzip",
            "anthropic-version": API_VERSION,
        }
        if credentials.api_key:
            self._headers["x-api-key"] = credentials.api_key

    def build_request(
        self, request: ChatRequest, endpoint: Endpoint, *, stream: bool
    ) -> UpstreamRequest:
        body = build_body(request, endpoint, self._catalog.parameter_set(endpoint))
        if stream:
            body["stream"] = True
        return UpstreamRequest("POST", self._url, self._headers, _encode(body))

    # --- response parsing -----------------------------------------------------------------

    def parse_response(self, body: bytes) -> ChatResult:
        return parse_message(message_decoder.decode(body))

    # --- stream parsing -------------------------------------------------------------------

    def stream_parser(self) -> SSEParser:
        return SSEParser()

    def parse_stream_event(self, event: SSEEvent, state: StreamState) -> list[ChatChunk]:
        parsed = event_decoder.decode(event.data)
        if parsed.type == "error":
            raise self._stream_error(parsed.error or {})
        return StreamTranslator.of(state).translate(parsed)

    def _stream_error(self, error: Block) -> UpstreamError:
        kind = error.get("type")
        message = f"{self.spec.name} reported an error mid-stream: {error.get('message')}"
        common: dict[str, Any] = {"provider": self.spec.name, "raw": error}
        if kind == "overloaded_error":
            return UpstreamUnavailable(message, **common)
        if kind == "rate_limit_error":
            return UpstreamRateLimited(message, **common)
        return UpstreamError(message, **common)

    # --- errors ---------------------------------------------------------------------------

    def map_error(self, status: int, headers: dict[str, str], body: bytes) -> UpstreamError:
        # Anthropic's body is {"type": "error", "error": {"type", "message"}}: the OpenAI
        # mapping finds the inner object under the same key, and keeps it in metadata.raw.
        return map_openai_error(self.spec.name, status, headers, body)
