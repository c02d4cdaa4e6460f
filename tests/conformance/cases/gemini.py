"""Conformance case for the Gemini API protocol (provider google-ai-studio).

Gemini carries the stream switch in the URL (``:streamGenerateContent``), not the body:
``requests`` marks each body with ``__stream`` from the recorded path for ``summarize``.
Function calls arrive whole in one stream event (the protocol never splits arguments), so
the adapter emits each call in one delta.
"""

from __future__ import annotations

import asyncio
import json
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
from tests.simulators.gemini_sim import run_in_thread


async def start_simulator() -> RunningSimulator:
    # Its own thread and loop: the suite may block its loop while the server calls it.
    handle = await asyncio.to_thread(run_in_thread)

    async def requests() -> list[dict[str, Any]]:
        # Bodies, as the contract asks; the stream switch lives in the URL, so it is
        # carried over as a marker the summary reads.
        records = await asyncio.to_thread(handle.requests)
        return [
            {**record["body"], "__stream": "streamGenerateContent" in record["path"]}
            for record in records
        ]

    async def set_script(script: Script | None) -> None:
        await asyncio.to_thread(handle.set_script, script)

    async def stop() -> None:
        await asyncio.to_thread(handle.stop)

    return RunningSimulator(
        base_url=handle.base_url,
        api_key=handle.api_key,
        requests=requests,
        set_script=set_script,
        stop=stop,
    )


def _get(obj: dict[str, Any], name: str) -> Any:
    """camelCase or snake_case, as the API accepts both."""
    snake = "".join("_" + c.lower() if c.isupper() else c for c in name)
    return obj.get(name, obj.get(snake))


def _tool_output(response: Any) -> str:
    if isinstance(response, dict) and isinstance(response.get("output"), str):
        return response["output"]
    return json.dumps(response)


def summarize(body: dict[str, Any]) -> Summary:
    system = _get(body, "systemInstruction") or {}
    messages: list[SummaryMessage] = []
    for content in body.get("contents") or []:
        parts = content.get("parts") or []
        if content.get("role") == "model":
            messages.append(
                SummaryMessage(
                    role="assistant",
                    text="".join(p["text"] for p in parts if "text" in p and not p.get("thought")),
                    tool_calls=[
                        SummaryToolCall(
                            name=call["name"], arguments=call.get("args") or {}, id=call.get("id")
                        )
                        for p in parts
                        if (call := _get(p, "functionCall"))
                    ],
                )
            )
            continue
        # A user turn may hold tool results and the user's own text: one summary turn each.
        pending: SummaryMessage | None = None
        for part in parts:
            result = _get(part, "functionResponse")
            if result is not None:
                if pending is not None:
                    messages.append(pending)
                    pending = None
                messages.append(
                    SummaryMessage(
                        role="tool",
                        text=_tool_output(result.get("response")),
                        tool_call_id=result.get("id"),
                        tool_name=result.get("name"),
                    )
                )
                continue
            pending = pending or SummaryMessage(role="user")
            inline = _get(part, "inlineData")
            if "text" in part:
                pending.text += part["text"]
            elif inline is not None:
                pending.images.append(
                    SummaryImage(media_type=_get(inline, "mimeType"), data=inline["data"])
                )
        if pending is not None:
            messages.append(pending)
    tools = [
        SummaryTool(
            name=declaration["name"],
            description=declaration.get("description"),
            parameters=_get(declaration, "parametersJsonSchema")
            or _get(declaration, "parameters")
            or {},
        )
        for tool in body.get("tools") or []
        for declaration in _get(tool, "functionDeclarations") or []
    ]
    generation = _get(body, "generationConfig") or {}
    return Summary(
        system="\n".join(p.get("text", "") for p in system.get("parts") or []),
        messages=messages,
        tools=tools,
        max_output_tokens=_get(generation, "maxOutputTokens"),
        temperature=generation.get("temperature"),
        stream=bool(body.get("__stream")),
    )


CASE = ConformanceCase(
    name="gemini",
    provider="google-ai-studio",
    model="google/gemini-2.5-flash",
    start_simulator=start_simulator,
    summarize=summarize,
    features=frozenset(
        {"reasoning", "tool_call_ids", "cached_tokens", "reasoning_tokens", "images"}
    ),
)
