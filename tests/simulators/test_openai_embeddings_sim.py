"""The embeddings simulator speaks OpenAI's protocol: driven by the official openai SDK."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import openai
import pytest
from openai.types import CreateEmbeddingResponse

from tests.simulators.openai_embeddings_sim import EmbeddingsSimHandle, run_in_thread


@pytest.fixture(scope="module")
def esim() -> Iterator[EmbeddingsSimHandle]:
    handle = run_in_thread()
    yield handle
    handle.stop()


@pytest.fixture
def client(esim: EmbeddingsSimHandle) -> openai.OpenAI:
    esim.reset()
    return openai.OpenAI(base_url=esim.openai_base_url, api_key="sk-sim-test", max_retries=0)


def test_float_response_validates_against_sdk_types(client: openai.OpenAI) -> None:
    raw = client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=["hello world", "bonjour"], encoding_format="float"
    )
    body = CreateEmbeddingResponse.model_validate(raw.http_response.json())
    assert [d.index for d in body.data] == [0, 1]
    assert all(len(d.embedding) == 1536 for d in body.data)
    # "hello world" is 2 cl100k tokens, "bonjour" 2 (bon|jour).
    assert body.usage.prompt_tokens == body.usage.total_tokens == 4
    assert abs(np.linalg.norm(body.data[0].embedding) - 1) < 1e-5


def test_sdk_default_base64_decodes_to_the_float_vectors(client: openai.OpenAI) -> None:
    as_floats = client.embeddings.create(
        model="text-embedding-3-large", input="same text", encoding_format="float"
    )
    decoded = client.embeddings.create(model="text-embedding-3-large", input="same text")
    assert len(decoded.data[0].embedding) == 3072
    assert decoded.data[0].embedding == as_floats.data[0].embedding


def test_dimensions_shorten_and_renormalise(client: openai.OpenAI) -> None:
    out = client.embeddings.create(model="text-embedding-3-small", input="x", dimensions=256)
    vector = np.array(out.data[0].embedding)
    assert vector.shape == (256,)
    assert abs(np.linalg.norm(vector) - 1) < 1e-5


def test_token_arrays_are_accepted_and_counted(client: openai.OpenAI) -> None:
    out = client.embeddings.create(model="text-embedding-3-small", input=[[1, 2, 3], [4, 5]])
    assert len(out.data) == 2
    assert out.usage.prompt_tokens == 5


def test_openai_errors(client: openai.OpenAI, esim: EmbeddingsSimHandle) -> None:
    with pytest.raises(openai.BadRequestError, match="does not support specifying dimensions"):
        client.embeddings.create(model="text-embedding-ada-002", input="x", dimensions=8)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.embeddings.create(model="nope", input="x")
    with pytest.raises(openai.BadRequestError, match="maximum context length is 8192"):
        client.embeddings.create(model="text-embedding-3-small", input="word " * 9000)
    bad_key = openai.OpenAI(base_url=esim.openai_base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad_key.embeddings.create(model="text-embedding-3-small", input="x")


def test_faults_and_recorded_requests(client: openai.OpenAI, esim: EmbeddingsSimHandle) -> None:
    esim.add_faults({"kind": "status", "status": 503, "retry_after": 2})
    with pytest.raises(openai.InternalServerError) as caught:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert caught.value.response.headers["retry-after"] == "2"
    client.embeddings.create(model="text-embedding-3-small", input="x", user="u-1")
    recorded = esim.requests()
    assert len(recorded) == 2
    assert recorded[1]["body"]["user"] == "u-1"
    assert recorded[1]["body"]["encoding_format"] == "base64"  # the SDK's default
