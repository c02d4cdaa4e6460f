"""The provider conformance contract: one canonical conversation, every protocol.

Every outbound protocol (OpenAI, Azure, Anthropic, Gemini, Ollama, Bedrock, ...) has a
simulator in ``tests/simulators``. To join the conformance suite a simulator implements two
things, and its protocol registers a :class:`ConformanceCase` in
``tests/conformance/cases/<name>.py`` (a module-level ``CASE``, or ``CASES``):

1. ``POST /__sim/script`` with a :class:`Script` as JSON makes every following chat request
   answer with exactly that reply, rendered in the simulator's own protocol, streamed or
   not as the request asks (``DELETE /__sim/script`` returns to the default reply). Streams
   split the text and the reasoning into several deltas and each tool call's arguments into
   at least two fragments, so that adapters must reassemble them.
2. ``GET /__sim/requests`` returns the JSON bodies it received, oldest first, as a list of
   ``{"body": <the request body>, ...}`` objects (other keys are free-form: path, headers),
   either bare or as ``{"requests": [...]}``.

The case's ``summarize`` turns one native request body back into a :class:`Summary`, so the
suite can check that what the adapter sent carries the whole conversation.

Canonical meanings, whatever the protocol says natively:
- ``usage.prompt_tokens`` counts every input token, cached ones included; ``cached_tokens``
  is the part read from cache. (Anthropic reports ``input_tokens`` without cache reads;
  its simulator renders ``input_tokens = prompt_tokens - cached_tokens`` and
  ``cache_read_input_tokens = cached_tokens``.)
- ``usage.completion_tokens`` counts every output token, reasoning included;
  ``reasoning_tokens`` is the reasoning part. (Gemini's ``candidatesTokenCount`` excludes
  ``thoughtsTokenCount``; its simulator renders the difference.)
- ``finish_reason`` is the canonical one (stop, length, tool_calls, content_filter); each
  simulator renders its native value (Anthropic ``tool_use``, Gemini ``STOP`` ...).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec


class ScriptedToolCall(msgspec.Struct):
    id: str
    name: str
    arguments: dict[str, Any]  # a JSON object; protocols that send strings encode it


class ScriptedUsage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0


class Script(msgspec.Struct):
    """The reply a simulator gives to every chat request while the script is set."""

    text: str | None = None
    reasoning: str | None = None  # protocols without reasoning output ignore it
    tool_calls: list[ScriptedToolCall] = []
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"] = "stop"
    usage: ScriptedUsage = msgspec.field(
        default_factory=lambda: ScriptedUsage(prompt_tokens=10, completion_tokens=5)
    )


class SummaryToolCall(msgspec.Struct):
    name: str
    arguments: dict[str, Any]
    id: str | None = None  # None where the protocol has no call ids (older Gemini)


class SummaryImage(msgspec.Struct):
    media_type: str  # e.g. "image/png"
    data: str  # base64, as in the data: URL the conversation used


class SummaryMessage(msgspec.Struct):
    """One turn. Tool results are their own turns (role "tool"), whatever the protocol
    nests them in (Anthropic user blocks, Gemini functionResponse parts)."""

    role: Literal["user", "assistant", "tool"]
    text: str = ""  # all text parts of the turn joined with ""
    images: list[SummaryImage] = []
    tool_calls: list[SummaryToolCall] = []
    tool_call_id: str | None = None  # tool turns: the call answered (None if no ids)
    tool_name: str | None = None  # tool turns, where the protocol names the function


class SummaryTool(msgspec.Struct):
    name: str
    description: str | None
    parameters: dict[str, Any]


class Summary(msgspec.Struct):
    """What a native request said, in canonical terms."""

    system: str  # every system / developer instruction, joined with "\n"
    messages: list[SummaryMessage]
    tools: list[SummaryTool] = []
    max_output_tokens: int | None = None
    temperature: float | None = None
    stream: bool = False


@dataclass
class RunningSimulator:
    base_url: str  # what the provider's base_url (config) must be set to
    api_key: str
    requests: Callable[[], Awaitable[list[dict[str, Any]]]]  # recorded native bodies
    set_script: Callable[[Script | None], Awaitable[None]]
    stop: Callable[[], Awaitable[None]]
    # Extra ProviderConfig fields the provider needs (api_version, deployments, region ...).
    config: dict[str, Any] = field(default_factory=dict)


Feature = Literal["reasoning", "tool_call_ids", "cached_tokens", "reasoning_tokens", "images"]


@dataclass(frozen=True)
class ConformanceCase:
    name: str
    provider: str  # provider slug in the built-in catalog
    model: str  # a catalog model with an endpoint on that provider
    start_simulator: Callable[[], Awaitable[RunningSimulator]]
    summarize: Callable[[dict[str, Any]], Summary]
    # What the protocol can carry; the suite only compares what is listed here.
    features: frozenset[Feature] = frozenset()


async def script_over_http(root_url: str, script: Script | None) -> None:
    """Set (or clear) a simulator's script through its ``/__sim`` control API."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        if script is None:
            response = await session.delete(f"{root_url}/__sim/script")
        else:
            response = await session.post(
                f"{root_url}/__sim/script", data=msgspec.json.encode(script)
            )
        response.raise_for_status()


async def requests_over_http(root_url: str) -> list[dict[str, Any]]:
    """The request bodies a simulator recorded, oldest first."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        response = await session.get(f"{root_url}/__sim/requests")
        response.raise_for_status()
        records = await response.json()
    if isinstance(records, dict):  # {"requests": [...]}, as the OpenAI simulator answers
        records = records["requests"]
    return [record["body"] for record in records]
