"""OpenAI Embeddings (``POST {base_url}/embeddings``), and every host that speaks it.

Order: constants, request building, response parsing, errors (via :func:`map_openai_error`).
Vectors are always asked for as base64: exact float32, about a quarter of the bytes of a
float list. Hosts that ignore ``encoding_format`` and send floats are understood too.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from switchyard.catalog import Endpoint, ProviderSpec
from switchyard.errors import UpstreamError
from switchyard.providers.base import UpstreamRequest
from switchyard.providers.openai import Credentials, map_openai_error
from switchyard.upstream.client import UpstreamClient, translate
from switchyard.wire.embeddings import Embedded, EmbeddingJob, decode_base64_vector

# --- constants ----------------------------------------------------------------------------


class _Item(msgspec.Struct):
    embedding: list[float] | str
    index: int


class _Usage(msgspec.Struct):
    prompt_tokens: int | None = None


class _Response(msgspec.Struct):
    data: list[_Item]
    usage: _Usage | None = None


_response_decoder = msgspec.json.Decoder(_Response)
_encoder = msgspec.json.Encoder()


# --- request building ---------------------------------------------------------------------


def build_request(
    credentials: Credentials, headers: dict[str, str], job: EmbeddingJob, endpoint: Endpoint
) -> UpstreamRequest:
    body: dict[str, Any] = {
        "model": endpoint.upstream_model,
        "input": job.texts if job.texts is not None else job.token_arrays,
        "encoding_format": "base64",
    }
    if job.dimensions is not None:
        body["dimensions"] = job.dimensions
    if job.user is not None:
        body["user"] = job.user
    return UpstreamRequest(
        "POST", f"{credentials.base_url}/embeddings", headers, _encoder.encode(body)
    )


# --- response parsing ---------------------------------------------------------------------


def parse_response(body: bytes, inputs: int, provider: str) -> Embedded:
    try:
        parsed = _response_decoder.decode(body)
        rows = sorted(parsed.data, key=lambda item: item.index)
        if [item.index for item in rows] != list(range(inputs)):
            raise ValueError(f"expected {inputs} embeddings indexed 0..{inputs - 1}")
        vectors = [
            decode_base64_vector(item.embedding)
            if isinstance(item.embedding, str)
            else np.asarray(item.embedding, dtype=np.float32)
            for item in rows
        ]
        if len({len(v) for v in vectors}) != 1:
            raise ValueError("embeddings of different lengths")
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise UpstreamError(
            f"{provider} returned a response that is not valid: {exc}", provider=provider
        ) from None
    prompt_tokens = parsed.usage.prompt_tokens if parsed.usage else None
    return Embedded(np.stack(vectors), prompt_tokens)


# --- the embedder -------------------------------------------------------------------------


class OpenAIEmbedder:
    accepts_token_arrays = True

    def __init__(self, spec: ProviderSpec, credentials: Credentials, client: UpstreamClient):
        self.spec = spec
        self.credentials = credentials
        self._client = client
        self._headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip"}
        if credentials.api_key:
            self._headers["Authorization"] = f"Bearer {credentials.api_key}"

    def start(self) -> None:
        return None

    def stats(self) -> dict[str, int]:
        return {}

    async def embed(self, job: EmbeddingJob, endpoint: Endpoint) -> Embedded:
        upstream = build_request(self.credentials, self._headers, job, endpoint)
        response = await self._client.send(upstream, self.spec.name)
        try:
            body = await response.read()
        except BaseException as exc:
            response.close()
            raise translate(exc, self.spec.name) from None
        finally:
            response.release()
        if response.status >= 400:
            raise map_openai_error(self.spec.name, response.status, dict(response.headers), body)
        return parse_response(body, len(job), self.spec.name)

    async def aclose(self) -> None:
        return None
