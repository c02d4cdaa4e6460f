"""The OpenAI embeddings adapter: the request it builds, the responses it understands."""

from __future__ import annotations

import base64

import msgspec
import numpy as np
import pytest

from switchyard.catalog import Endpoint, load_catalog
from switchyard.errors import UpstreamError
from switchyard.providers.openai import Credentials
from switchyard.providers.openai_embeddings import build_request, parse_response
from switchyard.wire.embeddings import EmbeddingJob

CREDS = Credentials(api_key="sk-test", base_url="https://api.example.com/v1")
HEADERS = {"Authorization": "Bearer sk-test"}


@pytest.fixture(scope="module")
def endpoint() -> Endpoint:
    (found,) = load_catalog().endpoints_for("openai/text-embedding-3-small")
    return found


def b64(values: list[float]) -> str:
    return base64.b64encode(np.array(values, dtype="<f4").tobytes()).decode()


def test_request_asks_for_base64_and_forwards_only_what_openai_knows(endpoint: Endpoint) -> None:
    job = EmbeddingJob(texts=["a", "b"], token_arrays=None, dimensions=64, input_type="x", user="u")
    request = build_request(CREDS, HEADERS, job, endpoint)
    assert (request.method, request.url) == ("POST", "https://api.example.com/v1/embeddings")
    assert request.headers is HEADERS
    assert msgspec.json.decode(request.body) == {
        "model": "text-embedding-3-small",
        "input": ["a", "b"],
        "encoding_format": "base64",
        "dimensions": 64,
        "user": "u",
    }
    tokens = EmbeddingJob(texts=None, token_arrays=[[1, 2], [3]])
    body = msgspec.json.decode(build_request(CREDS, HEADERS, tokens, endpoint).body)
    assert body == {
        "model": "text-embedding-3-small",
        "input": [[1, 2], [3]],
        "encoding_format": "base64",
    }


def test_parses_base64_and_float_vectors_in_index_order() -> None:
    body = msgspec.json.encode(
        {
            "object": "list",
            "model": "text-embedding-3-small",
            "data": [
                {"object": "embedding", "index": 1, "embedding": [0.5, 0.25]},
                {"object": "embedding", "index": 0, "embedding": b64([0.1, -1.0])},
            ],
            "usage": {"prompt_tokens": 7, "total_tokens": 7},
        }
    )
    parsed = parse_response(body, 2, "OpenAI")
    assert parsed.prompt_tokens == 7
    assert parsed.vectors.dtype == np.float32
    assert parsed.vectors.tolist() == [[np.float32(0.1), -1.0], [0.5, 0.25]]


@pytest.mark.parametrize(
    "data",
    [
        [{"index": 0, "embedding": [1.0]}],  # one vector for two inputs
        [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}],
        [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [2.0, 3.0]}],
        [{"index": 0, "embedding": "not-base64!"}, {"index": 1, "embedding": [1.0]}],
    ],
)
def test_malformed_responses_are_upstream_errors(data: list[object]) -> None:
    body = msgspec.json.encode({"data": data})
    with pytest.raises(UpstreamError, match="not valid"):
        parse_response(body, 2, "OpenAI")
