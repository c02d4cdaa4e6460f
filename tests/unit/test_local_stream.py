"""The local provider's stream chunks, normalised to what Chat Completions streams send."""

from __future__ import annotations

from typing import Any

import msgspec

from switchyard.providers.local_response import normalise_delta
from switchyard.wire.chat import ChatChunk


def raw_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "cmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def call(arguments: str) -> dict[str, Any]:
    # What llama.cpp's chatml_function_calling streams: the whole head on every chunk.
    return {
        "index": 0,
        "id": "call_0",
        "type": "function",
        "function": {"name": "get_weather", "arguments": arguments},
    }


def test_llama_cpp_tool_call_stream_becomes_openai_shaped() -> None:
    announced: set[int] = set()
    raws = [
        raw_chunk({"role": "assistant", "content": None, "tool_calls": None}),
        raw_chunk({"role": None, "content": None, "tool_calls": [call('{"city"')]}),
        raw_chunk({"role": None, "content": None, "tool_calls": [call(': "Paris"}')]}),
        raw_chunk({"role": None, "content": None, "tool_calls": None}, finish="tool_calls"),
    ]
    chunks = [msgspec.convert(normalise_delta(r, announced), ChatChunk) for r in raws]
    deltas = [msgspec.to_builtins(c.choices[0].delta) for c in chunks]
    assert deltas == [
        {"role": "assistant", "content": None},
        {"content": None, "tool_calls": [call('{"city"')]},
        {"content": None, "tool_calls": [{"index": 0, "function": {"arguments": ': "Paris"}'}}]},
        {"content": None},
    ]


def test_plain_text_chunks_are_untouched() -> None:
    raw = raw_chunk({"role": "assistant", "content": "Hi"})
    assert normalise_delta(raw, set()) == raw_chunk({"role": "assistant", "content": "Hi"})
