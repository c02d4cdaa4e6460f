"""decode_request: every malformed request becomes a 400 InvalidRequest naming its field."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from switchyard.errors import InvalidRequest
from switchyard.wire.chat import ChatRequest, ImagePart, TextPart, UserMessage
from switchyard.wire.codec import decode_request, encode

USER_HI = {"role": "user", "content": "hi"}


def body(**fields: Any) -> bytes:
    return json.dumps({"model": "openai/gpt-4o", "messages": [USER_HI], **fields}).encode()


def decode_error(raw: bytes) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        decode_request(raw, ChatRequest)
    assert info.value.status == 400
    return info.value


def field_of(exc: InvalidRequest) -> str | None:
    return (exc.metadata or {}).get("field")


# --- bodies that are not a request at all ---------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b'{"model": ', b"{'model': 'x'}", b'{"messages": [{"role": "user", "content": "hi"}]} x'],
)
def test_malformed_json(raw: bytes) -> None:
    exc = decode_error(raw)
    assert "Malformed JSON" in exc.message


@pytest.mark.parametrize("raw", [b"", b"   ", b"\r\n\t"])
def test_empty_body(raw: bytes) -> None:
    exc = decode_error(raw)
    assert "empty" in exc.message


@pytest.mark.parametrize(
    ("raw", "got"), [(b"[1, 2]", "array"), (b'"hi"', "str"), (b"null", "null"), (b"3", "int")]
)
def test_non_object_body(raw: bytes, got: str) -> None:
    exc = decode_error(raw)
    assert "Expected `object`" in exc.message
    assert got in exc.message


def test_error_renders_as_api_error_shape() -> None:
    exc = decode_error(body(temperature=3))
    assert exc.to_dict() == {
        "error": {
            "code": 400,
            "message": exc.message,
            "metadata": {"field": "temperature"},
        }
    }


# --- field-level errors ---------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b'{"model": "openai/gpt-4o"}', b"{}"])
def test_missing_messages_names_field(raw: bytes) -> None:
    # msgspec reports a missing top-level field without any " - at `$`" path suffix.
    exc = decode_error(raw)
    assert field_of(exc) == "messages"
    assert "`messages`" in exc.message


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"messages": []}, "messages"),
        ({"messages": {}}, "messages"),
        ({"temperature": "0.5"}, "temperature"),
        ({"temperature": 3}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_logprobs": 21}, "top_logprobs"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": 5}, "stop"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"max_completion_tokens": -1}, "max_completion_tokens"),
        ({"frequency_penalty": 2.5}, "frequency_penalty"),
        ({"stream": "yes"}, "stream"),
        ({"model": 42}, "model"),
        ({"provider": {"sort": "cheapest"}}, "provider.sort"),
    ],
)
def test_bad_values_name_their_field(fields: dict[str, Any], field: str) -> None:
    exc = decode_error(body(**fields))
    assert field_of(exc) == field
    assert f"`{field}`" in exc.message


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([{"role": "wizard", "content": "hi"}], "messages[0].role"),
        ([{"content": "hi"}], "messages[0].role"),
        ([USER_HI, {"role": "user"}], "messages[1].content"),
        ([{"role": "system"}], "messages[0].content"),
        ([{"role": "tool", "content": "x"}], "messages[0].tool_call_id"),
        ([{"role": "user", "content": 7}], "messages[0].content"),
        ([{"role": "user", "content": [{"type": "hologram"}]}], "messages[0].content[0].type"),
        ([{"role": "user", "content": [{"type": "text"}]}], "messages[0].content[0].text"),
        (
            [USER_HI, {"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
            "messages[1].content[0].image_url.url",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "a"},
                        {"type": "image_url", "image_url": {"url": "https://x/y", "detail": "max"}},
                    ],
                }
            ],
            "messages[0].content[1].image_url.detail",
        ),
        # System messages take text parts only.
        (
            [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            "messages[0].content[0].type",
        ),
    ],
)
def test_bad_messages_name_the_path(messages: list[Any], field: str) -> None:
    exc = decode_error(body(messages=messages))
    assert field_of(exc) == field


def test_missing_field_message_names_the_full_path() -> None:
    exc = decode_error(body(messages=[USER_HI, {"role": "user"}]))
    assert exc.message == "Missing required field `messages[1].content`"


# --- what decodes, and how it re-encodes ----------------------------------------------------


def test_unknown_top_level_fields_are_ignored() -> None:
    request = decode_request(body(frobnicate=True, x_extra={"a": 1}), ChatRequest)
    assert request.model == "openai/gpt-4o"
    assert b"frobnicate" not in encode(request)
    assert b"x_extra" not in encode(request)


def test_decoded_types() -> None:
    parts = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
    ]
    request = decode_request(body(messages=[{"role": "user", "content": parts}]), ChatRequest)
    message = request.messages[0]
    assert isinstance(message, UserMessage)
    assert isinstance(message.content, list)
    assert isinstance(message.content[0], TextPart)
    assert isinstance(message.content[1], ImagePart)
    assert message.content[1].image_url.detail == "low"
    assert request.temperature is msgspec.UNSET
    assert request.output_limit() is None


@pytest.mark.parametrize(
    ("fields", "limit"),
    [
        ({"max_tokens": 10}, 10),
        ({"max_completion_tokens": 20}, 20),
        ({"max_tokens": 10, "max_completion_tokens": 20}, 20),
        ({"max_tokens": None}, None),
    ],
)
def test_output_limit(fields: dict[str, Any], limit: int | None) -> None:
    assert decode_request(body(**fields), ChatRequest).output_limit() == limit


def test_reencoding_keeps_only_sent_fields() -> None:
    sent = {
        "model": "openai/gpt-4o",
        "messages": [
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                ],
            },
        ],
        "temperature": 0.5,
        "stop": None,
        "provider": {"order": ["azure"]},
    }
    request = decode_request(json.dumps(sent).encode(), ChatRequest)
    reencoded = json.loads(encode(request))
    # `stream` has a concrete default (false) rather than UNSET, so it is always emitted.
    assert reencoded.pop("stream") is False
    assert reencoded == sent


def test_reencoding_minimal_request() -> None:
    request = decode_request(b'{"messages":[{"role":"user","content":"hi"}]}', ChatRequest)
    assert json.loads(encode(request)) == {"messages": [USER_HI], "stream": False}


def test_explicit_null_is_kept_distinct_from_absent() -> None:
    request = decode_request(body(temperature=None), ChatRequest)
    assert request.temperature is None
    assert json.loads(encode(request))["temperature"] is None
