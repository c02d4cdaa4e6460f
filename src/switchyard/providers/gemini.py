"""Google's Gemini API (generativelanguage.googleapis.com): ``generateContent`` and its stream.

``POST {base_url}/{version}/models/{model}:generateContent`` answers one
``GenerateContentResponse``; ``:streamGenerateContent?alt=sse`` answers a server-sent event
per partial ``GenerateContentResponse``. The key goes in the ``x-goog-api-key`` header, never
in the URL, so it cannot leak into access logs.

This module holds the adapter the registry builds and its credentials; the translation lives
beside it: ``gemini_request`` (request body), ``gemini_response`` (response and stream) and
``gemini_errors`` (error mapping).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import quote

import msgspec

from switchyard.catalog import Catalog, Endpoint, ProviderSpec
from switchyard.errors import UpstreamError
from switchyard.providers.base import StreamState, UpstreamRequest
from switchyard.providers.gemini_errors import map_gemini_error, reported_error
from switchyard.providers.gemini_request import build_body, is_file_reference
from switchyard.providers.gemini_response import response_decoder, to_chunks, to_result
from switchyard.providers.openai import Credentials, resolve_credentials
from switchyard.settings import ProviderConfig
from switchyard.sse import SSEEvent, SSEParser
from switchyard.wire.chat import ChatChunk, ChatRequest, ChatResult

# --- constants ----------------------------------------------------------------------------

# The google-genai SDK reads GOOGLE_API_KEY first, then GEMINI_API_KEY.
API_KEY_ENVS = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
DEFAULT_API_VERSION = "v1beta"


# --- credentials --------------------------------------------------------------------------


def resolve_gemini_credentials(
    spec: ProviderSpec, config: ProviderConfig | None, environ: Mapping[str, str] | None = None
) -> Credentials | None:
    """Config file first, then the catalog's key variable, then the SDK's own two."""
    env = os.environ if environ is None else environ
    key_env = next(
        (name for name in (spec.api_key_env, *API_KEY_ENVS) if name and env.get(name)), None
    )
    if key_env != spec.api_key_env:
        spec = msgspec.structs.replace(spec, api_key_env=key_env)
    credentials = resolve_credentials(spec, config, env)
    if credentials is not None and credentials.api_version is None:
        credentials = Credentials(credentials.api_key, credentials.base_url, DEFAULT_API_VERSION)
    return credentials


# --- adapter ------------------------------------------------------------------------------


class GeminiAdapter:
    """generateContent over ``x-goog-api-key``; one adapter per configured provider."""

    def __init__(self, spec: ProviderSpec, credentials: Credentials, catalog: Catalog) -> None:
        self.spec = spec
        self.credentials = credentials
        self._catalog = catalog
        self._headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip"}
        if credentials.api_key:
            self._headers["x-goog-api-key"] = credentials.api_key

    def wants_inline(self, url: str) -> bool:
        # Gemini reads its own Files API and YouTube by reference; the rest the provider
        # fetches and inlines for us.
        return not is_file_reference(url)

    def url(self, endpoint: Endpoint, *, stream: bool) -> str:
        base = self.credentials.base_url
        version = self.credentials.api_version or DEFAULT_API_VERSION
        model = quote(endpoint.upstream_model.removeprefix("models/"), safe="")
        if stream:
            return f"{base}/{version}/models/{model}:streamGenerateContent?alt=sse"
        return f"{base}/{version}/models/{model}:generateContent"

    def build_request(
        self, request: ChatRequest, endpoint: Endpoint, *, stream: bool
    ) -> UpstreamRequest:
        body = build_body(request, self._catalog.parameter_set(endpoint))
        return UpstreamRequest(
            "POST", self.url(endpoint, stream=stream), self._headers, msgspec.json.encode(body)
        )

    # --- response parsing -----------------------------------------------------------------

    def parse_response(self, body: bytes) -> ChatResult:
        response = response_decoder.decode(body)
        if response.error is not None:
            raise reported_error(self.spec.name, response.error)
        return to_result(response)

    # --- stream parsing -------------------------------------------------------------------

    def stream_parser(self) -> SSEParser:
        return SSEParser()

    def parse_stream_event(self, event: SSEEvent, state: StreamState) -> list[ChatChunk]:
        response = response_decoder.decode(event.data)
        if response.error is not None:
            raise reported_error(self.spec.name, response.error)
        return to_chunks(response, state)

    # --- errors ---------------------------------------------------------------------------

    def map_error(self, status: int, headers: dict[str, str], body: bytes) -> UpstreamError:
        return map_gemini_error(self.spec.name, status, headers, body)
