"""Anthropic Messages API: tool results nest in user turns, the system prompt is top-level."""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec

from tests.conformance.contract import (
    ConformanceCase,
    RunningSimulator,
    Script,
    Summary,
    SummaryImage,
    SummaryMessage,
    SummaryTool,
    SummaryToolCall,
)
from tests.simulators.anthropic_sim import DEFAULT_API_KEY, AnthropicSimulator


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if b.get("type") == "text")
    return ""


def _image(block: dict[str, Any]) -> SummaryImage | None:
    source = block.get("source") or {}
    if source.get("type") != "base64":
        return None
    return SummaryImage(source["media_type"], source["data"])


def _user_turn(content: Any) -> list[SummaryMessage]:
    """One Anthropic user turn: its tool results as tool turns, the rest as a user turn."""
    if isinstance(content, str):
        return [SummaryMessage(role="user", text=content)]
    out: list[SummaryMessage] = []
    text: list[str] = []
    images: list[SummaryImage] = []

    def flush() -> None:
        if text or images:
            out.append(SummaryMessage(role="user", text="".join(text), images=list(images)))
            text.clear()
            images.clear()

    for block in content:
        kind = block.get("type")
        if kind == "tool_result":
            flush()
            out.append(
                SummaryMessage(
                    role="tool",
                    text=_text(block.get("content")),
                    tool_call_id=block["tool_use_id"],
                )
            )
        elif kind == "text":
            text.append(block["text"])
        elif kind == "image":
            image = _image(block)
            if image is not None:
                images.append(image)
    flush()
    return out


def summarize(body: dict[str, Any]) -> Summary:
    system = body.get("system")
    if isinstance(system, list):
        system = "\n".join(b["text"] for b in system)
    messages: list[SummaryMessage] = []
    for message in body["messages"]:
        content = message["content"]
        if message["role"] == "user":
            messages.extend(_user_turn(content))
            continue
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
        messages.append(
            SummaryMessage(
                role="assistant",
                text=_text(blocks),
                tool_calls=[
                    SummaryToolCall(name=b["name"], arguments=b["input"], id=b["id"])
                    for b in blocks
                    if b.get("type") == "tool_use"
                ],
            )
        )
    return Summary(
        system=system or "",
        messages=messages,
        tools=[
            SummaryTool(
                name=t["name"], description=t.get("description"), parameters=t["input_schema"]
            )
            for t in body.get("tools") or []
        ],
        max_output_tokens=body.get("max_tokens"),
        temperature=body.get("temperature"),
        stream=body.get("stream") is True,
    )


async def start() -> RunningSimulator:
    simulator = AnthropicSimulator()
    await simulator.start()
    root = simulator.base_url

    async def set_script(script: Script | None) -> None:
        async with aiohttp.ClientSession() as session:
            if script is None:
                response = await session.delete(f"{root}/__sim/script")
            else:
                response = await session.post(
                    f"{root}/__sim/script", data=msgspec.json.encode(script)
                )
            response.raise_for_status()

    async def requests() -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session:
            response = await session.get(f"{root}/__sim/requests")
            response.raise_for_status()
            records = await response.json()
        return [record["body"] for record in records["requests"]]

    return RunningSimulator(
        base_url=root,
        api_key=DEFAULT_API_KEY,
        requests=requests,
        set_script=set_script,
        stop=simulator.stop,
    )


CASE = ConformanceCase(
    name="anthropic",
    provider="anthropic",
    model="anthropic/claude-sonnet-4.5",
    start_simulator=start,
    summarize=summarize,
    features=frozenset(
        {"reasoning", "tool_call_ids", "cached_tokens", "reasoning_tokens", "images"}
    ),
)
