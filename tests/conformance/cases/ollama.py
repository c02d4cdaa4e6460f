"""Ollama's native chat API (/api/chat) against its simulator.

Ollama's tool calls carry no ids (the adapter makes them up) and its usage has no cached or
reasoning token counts, so those features are not compared. Images travel as bare base64;
the media type is read back from the data's signature.
"""

from __future__ import annotations

import asyncio
from typing import Any

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
from tests.simulators.ollama_sim import run_in_thread

# Base64 prefixes of the file signatures Ollama's vision models accept.
_SIGNATURES = {
    "iVBOR": "image/png",
    "/9j/": "image/jpeg",
    "R0lGOD": "image/gif",
    "UklGR": "image/webp",
}


def _media_type(data: str) -> str:
    for prefix, media_type in _SIGNATURES.items():
        if data.startswith(prefix):
            return media_type
    return "application/octet-stream"


async def start_simulator() -> RunningSimulator:
    handle = await asyncio.to_thread(run_in_thread)

    async def requests() -> list[dict[str, Any]]:
        records = await asyncio.to_thread(handle.requests)
        return [record["body"] for record in records]  # the contract wants bodies

    async def set_script(script: Script | None) -> None:
        await asyncio.to_thread(handle.set_script, script)

    async def stop() -> None:
        await asyncio.to_thread(handle.stop)

    return RunningSimulator(
        base_url=handle.base_url,
        api_key="",
        requests=requests,
        set_script=set_script,
        stop=stop,
    )


def summarize(body: dict[str, Any]) -> Summary:
    system: list[str] = []
    messages: list[SummaryMessage] = []
    for message in body.get("messages") or ():
        role = message.get("role")
        text = message.get("content") or ""
        if role == "system":
            system.append(text)
        elif role == "tool":
            messages.append(
                SummaryMessage(role="tool", text=text, tool_name=message.get("tool_name"))
            )
        else:
            images = [SummaryImage(_media_type(d), d) for d in message.get("images") or ()]
            calls = [
                SummaryToolCall(name=c["function"]["name"], arguments=c["function"]["arguments"])
                for c in message.get("tool_calls") or ()
            ]
            messages.append(SummaryMessage(role=role, text=text, images=images, tool_calls=calls))
    tools = [
        SummaryTool(
            name=t["function"]["name"],
            description=t["function"].get("description"),
            parameters=t["function"].get("parameters") or {},
        )
        for t in body.get("tools") or ()
    ]
    options = body.get("options") or {}
    return Summary(
        system="\n".join(system),
        messages=messages,
        tools=tools,
        max_output_tokens=options.get("num_predict"),
        temperature=options.get("temperature"),
        stream=body.get("stream", True) is not False,
    )


CASE = ConformanceCase(
    name="ollama",
    provider="ollama",
    model="mistralai/mistral-small-3.1-24b-instruct",
    start_simulator=start_simulator,
    summarize=summarize,
    features=frozenset({"reasoning", "images"}),
)
