"""Bedrock Converse adapter: credentials, request building, parsing, stream framing. No I/O."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from switchyard.catalog import Catalog, Endpoint, load_catalog
from switchyard.errors import InvalidRequest, UpstreamError, UpstreamRateLimited
from switchyard.providers.base import StreamState
from switchyard.providers.bedrock import (
    BedrockAdapter,
    EventStreamParser,
    resolve_bedrock_credentials,
)
from switchyard.settings import ProviderConfig
from switchyard.wire.chat import ChatChunk, ChatRequest
from switchyard.wire.codec import decode_request
from tests.simulators.bedrock_sim import encode_event, encode_exception

MODEL = "amazon/nova-pro-v1"
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
    "AAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def endpoint(catalog: Catalog) -> Endpoint:
    return catalog.endpoints_for(MODEL)[0]


def adapter(catalog: Catalog, **config: Any) -> BedrockAdapter:
    spec = catalog.providers["amazon-bedrock"]
    settings = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret"}
    settings.update(config)
    credentials = resolve_bedrock_credentials(spec, ProviderConfig(**settings), {})
    assert credentials is not None
    return BedrockAdapter(spec, credentials, catalog)


def request(**body: Any) -> ChatRequest:
    body.setdefault("model", MODEL)
    return decode_request(json.dumps(body).encode(), ChatRequest)


def sent(catalog: Catalog, endpoint: Endpoint, **body: Any) -> dict[str, Any]:
    built = adapter(catalog).build_request(request(**body), endpoint, stream=False)
    return json.loads(built.body)


# --- credentials --------------------------------------------------------------------------


def test_credentials_come_from_the_aws_variables(catalog: Catalog) -> None:
    spec = catalog.providers["amazon-bedrock"]
    secret = "wJalrXUtnFEMI-K7MDENG-secret"
    env = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "eu-west-3"}
    found = resolve_bedrock_credentials(spec, None, env)
    assert found is not None
    assert found.base_url == "https://bedrock-runtime.eu-west-3.amazonaws.com"
    assert secret not in repr(found)


def test_without_any_credentials_the_provider_is_off(catalog: Catalog) -> None:
    spec = catalog.providers["amazon-bedrock"]
    assert resolve_bedrock_credentials(spec, None, {"AWS_ACCESS_KEY_ID": "only-half"}) is None


def test_a_bedrock_api_key_is_sent_as_a_bearer_token(catalog: Catalog, endpoint: Endpoint) -> None:
    spec = catalog.providers["amazon-bedrock"]
    credentials = resolve_bedrock_credentials(spec, None, {"AWS_BEARER_TOKEN_BEDROCK": "bk-1"})
    assert credentials is not None
    built = BedrockAdapter(spec, credentials, catalog).build_request(
        request(messages=[{"role": "user", "content": "hi"}]), endpoint, stream=True
    )
    assert built.headers["Authorization"] == "Bearer bk-1"
    assert built.url.endswith("/model/amazon.nova-pro-v1%3A0/converse-stream")


def test_requests_are_sigv4_signed_for_the_region(catalog: Catalog, endpoint: Endpoint) -> None:
    built = adapter(catalog, region="ap-south-1").build_request(
        request(messages=[{"role": "user", "content": "hi"}]), endpoint, stream=False
    )
    authorization = built.headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/ap-south-1/bedrock/aws4_request" in authorization
    assert "X-Amz-Date" in built.headers


# --- request building ---------------------------------------------------------------------


def test_system_is_hoisted_and_roles_alternate(catalog: Catalog, endpoint: Endpoint) -> None:
    body = sent(
        catalog,
        endpoint,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Use metric units."},
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
        ],
    )
    assert body["system"] == [{"text": "Be brief."}, {"text": "Use metric units."}]
    assert body["messages"] == [{"role": "user", "content": [{"text": "a"}, {"text": "b"}]}]


def test_tool_results_join_one_user_turn(catalog: Catalog, endpoint: Endpoint) -> None:
    calls = [
        {"id": f"c{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        for i in (1, 2)
    ]
    body = sent(
        catalog,
        endpoint,
        messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": "c1", "content": "one"},
            {"role": "tool", "tool_call_id": "c2", "content": "two"},
        ],
        tools=[{"type": "function", "function": {"name": "f"}}],
        tool_choice="required",
    )
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    results = body["messages"][2]["content"]
    assert [r["toolResult"]["toolUseId"] for r in results] == ["c1", "c2"]
    assert body["toolConfig"]["toolChoice"] == {"any": {}}
    assert body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"] == {"json": {"type": "object"}}


def test_images_go_inline_as_bytes(catalog: Catalog, endpoint: Endpoint) -> None:
    body = sent(
        catalog,
        endpoint,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
                ],
            }
        ],
    )
    assert body["messages"][0]["content"] == [
        {"image": {"format": "png", "source": {"bytes": PNG}}}
    ]


def test_an_image_url_lets_another_provider_try(catalog: Catalog, endpoint: Endpoint) -> None:
    content = [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]
    with pytest.raises(UpstreamError) as caught:
        sent(catalog, endpoint, messages=[{"role": "user", "content": content}])
    assert caught.value.retryable


def test_bad_tool_arguments_name_the_field(catalog: Catalog, endpoint: Endpoint) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
    with pytest.raises(InvalidRequest) as caught:
        sent(
            catalog,
            endpoint,
            messages=[
                {"role": "user", "content": "go"},
                {"role": "assistant", "tool_calls": [call]},
            ],
        )
    assert caught.value.field == "messages[1].tool_calls[0].function.arguments"


def test_inference_settings_map_to_inference_config(catalog: Catalog, endpoint: Endpoint) -> None:
    body = sent(
        catalog,
        endpoint,
        messages=[{"role": "user", "content": "go"}],
        max_tokens=77,
        temperature=0.3,
        top_p=0.9,
        stop="END",
    )
    assert body["inferenceConfig"] == {
        "maxTokens": 77,
        "temperature": 0.3,
        "topP": 0.9,
        "stopSequences": ["END"],
    }


# --- responses and streams ----------------------------------------------------------------


def test_a_response_with_reasoning_and_a_tool_call(catalog: Catalog) -> None:
    body = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s1"}}},
                    {"text": "Calling."},
                    {"toolUse": {"toolUseId": "t1", "name": "f", "input": {"x": 1}}},
                ],
            }
        },
        "stopReason": "tool_use",
        "usage": {
            "inputTokens": 10,
            "outputTokens": 5,
            "totalTokens": 15,
            "cacheReadInputTokens": 30,
            "cacheWriteInputTokens": 2,
        },
        "metrics": {"latencyMs": 1},
    }
    result = adapter(catalog).parse_response(json.dumps(body).encode())
    choice = result.choices[0]
    assert choice.message.content == "Calling."
    assert choice.message.reasoning == "hmm"
    assert choice.message.reasoning_details == [
        {"type": "reasoning.text", "text": "hmm", "index": 0, "signature": "s1"}
    ]
    assert choice.message.tool_calls[0].function.arguments == '{"x":1}'  # type: ignore[index]
    assert (choice.finish_reason, choice.native_finish_reason) == ("tool_calls", "tool_use")
    usage = result.usage
    assert usage.prompt_tokens == 42 and usage.completion_tokens == 5  # type: ignore[union-attr]
    assert usage.prompt_tokens_details.cached_tokens == 30  # type: ignore[union-attr]


def _stream(catalog: Catalog, frames: bytes, step: int) -> list[ChatChunk]:
    bedrock = adapter(catalog)
    parser = bedrock.stream_parser()
    state = StreamState()
    chunks: list[ChatChunk] = []
    for i in range(0, len(frames), step):
        for event in parser.feed(frames[i : i + step]):
            chunks.extend(bedrock.parse_stream_event(event, state))
    return chunks


@pytest.mark.parametrize("step", [1, 7, 10_000])
def test_a_stream_split_anywhere_gives_the_same_chunks(catalog: Catalog, step: int) -> None:
    frames = b"".join(
        [
            encode_event("messageStart", {"role": "assistant"}),
            encode_event("contentBlockDelta", {"delta": {"text": "Hi"}, "contentBlockIndex": 0}),
            encode_event(
                "contentBlockStart",
                {"start": {"toolUse": {"toolUseId": "t", "name": "f"}}, "contentBlockIndex": 1},
            ),
            encode_event(
                "contentBlockDelta",
                {"delta": {"toolUse": {"input": '{"a"'}}, "contentBlockIndex": 1},
            ),
            encode_event(
                "contentBlockDelta",
                {"delta": {"toolUse": {"input": ":1}"}}, "contentBlockIndex": 1},
            ),
            encode_event("messageStop", {"stopReason": "tool_use"}),
            encode_event(
                "metadata",
                {"usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7}, "metrics": {}},
            ),
        ]
    )
    chunks = _stream(catalog, frames, step)
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.content for d in deltas if isinstance(d.content, str)) == "Hi"
    arguments = "".join(
        call.function.arguments  # type: ignore[union-attr,misc]
        for d in deltas
        for call in (d.tool_calls or [])
        if isinstance(call.function.arguments, str)  # type: ignore[union-attr]
    )
    assert arguments == '{"a":1}'
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage.total_tokens == 7  # type: ignore[union-attr]


def test_an_exception_mid_stream_is_an_upstream_error(catalog: Catalog) -> None:
    frames = encode_event("messageStart", {"role": "assistant"}) + encode_exception(
        "throttlingException", "slow down"
    )
    with pytest.raises(UpstreamError) as caught:
        _stream(catalog, frames, 10_000)
    assert caught.value.upstream_status == 429
    assert "slow down" in caught.value.message


def test_a_corrupt_frame_is_an_upstream_error() -> None:
    frame = bytearray(encode_event("messageStart", {"role": "assistant"}))
    frame[-1] ^= 0xFF  # break the message CRC
    with pytest.raises(UpstreamError):
        EventStreamParser().feed(bytes(frame))


def test_errors_keep_bedrocks_type_and_message(catalog: Catalog) -> None:
    error = adapter(catalog).map_error(
        429,
        {"x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/coral/"},
        msgspec.json.encode({"message": "Too many requests"}),
    )
    assert isinstance(error, UpstreamRateLimited)
    assert error.metadata["raw"] == {"type": "ThrottlingException", "message": "Too many requests"}
