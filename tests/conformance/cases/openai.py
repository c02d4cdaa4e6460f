"""OpenAI Chat Completions (and Azure, the same protocol on a deployment path)."""

from __future__ import annotations

import json
from typing import Any

from tests.conformance.contract import (
    ConformanceCase,
    RunningSimulator,
    Summary,
    SummaryImage,
    SummaryMessage,
    SummaryTool,
    SummaryToolCall,
    requests_over_http,
    script_over_http,
)
from tests.simulators.openai_sim import DEFAULT_API_KEY, OpenAISimulator


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


def _images(content: Any) -> list[SummaryImage]:
    images = []
    for part in content if isinstance(content, list) else []:
        if part.get("type") == "image_url":
            url = part["image_url"]["url"]
            head, _, data = url.partition(",")
            images.append(SummaryImage(head.removeprefix("data:").split(";")[0], data))
    return images


def summarize(body: dict[str, Any]) -> Summary:
    system: list[str] = []
    messages: list[SummaryMessage] = []
    for message in body["messages"]:
        role = message["role"]
        if role in ("system", "developer"):
            system.append(_text(message["content"]))
        elif role == "tool":
            messages.append(
                SummaryMessage(
                    role="tool",
                    text=_text(message["content"]),
                    tool_call_id=message["tool_call_id"],
                )
            )
        else:
            calls = [
                SummaryToolCall(
                    name=c["function"]["name"],
                    arguments=json.loads(c["function"]["arguments"]),
                    id=c["id"],
                )
                for c in message.get("tool_calls") or []
            ]
            messages.append(
                SummaryMessage(
                    role=role,
                    text=_text(message.get("content")),
                    images=_images(message.get("content")),
                    tool_calls=calls,
                )
            )
    tools = [
        SummaryTool(
            name=t["function"]["name"],
            description=t["function"].get("description"),
            parameters=t["function"].get("parameters") or {},
        )
        for t in body.get("tools") or []
    ]
    return Summary(
        system="\n".join(system),
        messages=messages,
        tools=tools,
        max_output_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
        temperature=body.get("temperature"),
        stream=body.get("stream") is True,
    )


async def _start(azure: bool) -> RunningSimulator:
    simulator = OpenAISimulator()
    await simulator.start()
    root = simulator.base_url

    async def set_script(script: Any) -> None:
        await script_over_http(root, script)

    async def requests() -> list[dict[str, Any]]:
        return await requests_over_http(root)

    return RunningSimulator(
        base_url=root if azure else simulator.openai_base_url,
        api_key=DEFAULT_API_KEY,
        requests=requests,
        set_script=set_script,
        stop=simulator.stop,
    )


async def start_openai() -> RunningSimulator:
    return await _start(azure=False)


async def start_azure() -> RunningSimulator:
    return await _start(azure=True)


FEATURES = frozenset({"tool_call_ids", "cached_tokens", "reasoning_tokens", "images"})
CASES = [
    ConformanceCase("openai", "openai", "openai/gpt-4o", start_openai, summarize, FEATURES),
    ConformanceCase("azure", "azure", "openai/gpt-4o", start_azure, summarize, FEATURES),
]
