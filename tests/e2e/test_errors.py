"""Bad input gets the API's error shape, the right status, and names the field."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.servers import RunningServer

LOCAL = "local/smollm2-135m-instruct"


def post(
    server: RunningServer, body: Any, *, key: str | None = "default", **kw: Any
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if key == "default":
        key = server.api_key
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if isinstance(body, bytes | str):
        return httpx.post(
            f"{server.base_url}/chat/completions", content=body, headers=headers, timeout=30, **kw
        )
    return httpx.post(
        f"{server.base_url}/chat/completions", json=body, headers=headers, timeout=30, **kw
    )


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == status and error["message"]
    return error


def hello(**extra: Any) -> dict[str, Any]:
    return {"model": LOCAL, "messages": [{"role": "user", "content": "hi"}], **extra}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (hello(temperature="hot"), "temperature"),
        (hello(temperature=2.5), "temperature"),
        (hello(max_tokens=0), "max_tokens"),
        (hello(stop=["a", "b", "c", "d", "e"]), "stop"),
        (hello(top_logprobs=3), "top_logprobs"),
        ({"model": LOCAL, "messages": []}, "messages"),
        ({"model": LOCAL}, "messages"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": LOCAL, "messages": [{"role": "user"}]}, "messages[0].content"),
        ({"model": LOCAL, "messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        (
            {"model": LOCAL, "messages": [{"role": "user", "content": [{"type": "hologram"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {
                "model": LOCAL,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}
                        ],
                    }
                ],
            },
            "messages[0].content[0].image_url.url",
        ),
        ({"model": "nobody/nothing", "messages": [{"role": "user", "content": "hi"}]}, "model"),
        (hello(models=[LOCAL, "nobody/nothing"]), "models[1]"),
        (hello(tool_choice="required"), "tool_choice"),
        (
            hello(provider={"preferred_min_throughput": {"p95": 10}}),
            "provider.preferred_min_throughput.p95",
        ),
        (hello(provider={"preferred_max_latency": -1}), "provider.preferred_max_latency"),
        (hello(provider={"max_price": {"prompt": -1}}), "provider.max_price.prompt"),
    ],
)
def test_bad_request_names_the_field(server: RunningServer, body: Any, field: str) -> None:
    error = error_of(post(server, body), 400)
    assert error["metadata"]["field"] == field
    assert field.split("[")[0].split(".")[0] in error["message"] or "model ID" in error["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'{"model": "x", "messages": [}'])
def test_malformed_json(server: RunningServer, raw: bytes) -> None:
    error_of(post(server, raw), 400)


def test_unsupported_modality(server: RunningServer) -> None:
    body = {
        "model": LOCAL,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
                ],
            }
        ],
    }
    error = error_of(post(server, body), 404)
    assert "audio" in error["message"]


def test_body_over_the_limit(server: RunningServer) -> None:
    huge = '{"model": "x", "messages": [{"role": "user", "content": "' + "a" * (11 << 20) + '"}]}'
    error_of(post(server, huge), 413)


def test_missing_and_bad_keys(server: RunningServer) -> None:
    error_of(post(server, hello(), key=None), 401)
    error_of(post(server, hello(), key="sk-sy-v1-" + "0" * 64), 401)
    response = httpx.post(
        f"{server.base_url}/chat/completions", json=hello(), headers={"Authorization": "Basic abc"}
    )
    error_of(response, 401)


def test_management_key_cannot_call_models(server: RunningServer) -> None:
    error_of(post(server, hello(), key=server.management_key), 403)


def test_unknown_routes_and_methods(server: RunningServer) -> None:
    error_of(httpx.get(f"{server.base_url}/nope"), 404)
    error_of(httpx.get(f"{server.base_url}/chat/completions"), 405)
    error_of(httpx.get(f"{server.base_url}/model/nobody/nothing"), 404)
    error_of(httpx.get(f"{server.base_url}/models/nobody/nothing/endpoints"), 404)
    error = error_of(httpx.get(f"{server.base_url}/models", params={"sort": "sideways"}), 400)
    assert error["metadata"]["field"] == "sort"


def test_catalog_reads_are_public_and_filter(server: RunningServer) -> None:
    listing = httpx.get(f"{server.base_url}/models").json()
    assert listing["total_count"] == len(listing["data"]) == 7
    vision = httpx.get(f"{server.base_url}/models", params={"input_modalities": "image"}).json()
    assert LOCAL not in {m["id"] for m in vision["data"]} and vision["total_count"] == 5
    cheap = httpx.get(f"{server.base_url}/models", params={"max_price": "1"}).json()
    assert {m["id"] for m in cheap["data"]} == {
        LOCAL,
        "local/gemma-3-270m",
        "openai/gpt-4o-mini-2024-07-18",
    }
    newest = httpx.get(f"{server.base_url}/models", params={"sort": "newest"}).json()
    assert [m["id"] for m in newest["data"][:2]] == [
        "local/gemma-3-270m",  # 2025-08-14
        "openai/gpt-4o-2024-11-20",
    ]
    model = httpx.get(f"{server.base_url}/model/openai/gpt-4-turbo").json()["data"]
    assert model["pricing"]["image"] == "0.01445" and model["created"] == 1712620800
