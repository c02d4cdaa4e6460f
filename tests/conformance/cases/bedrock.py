"""AWS Bedrock Converse, SigV4-signed, with its binary event stream."""

from __future__ import annotations

import base64
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
from tests.simulators.bedrock_sim import ACCESS_KEY, SECRET_KEY, BedrockSimulator


def _image(block: dict[str, Any]) -> SummaryImage:
    data = block["source"]["bytes"]
    base64.b64decode(data, validate=True)
    return SummaryImage(f"image/{block['format']}", data)


def summarize(body: dict[str, Any]) -> Summary:
    messages: list[SummaryMessage] = []
    for message in body["messages"]:
        text: list[str] = []
        images: list[SummaryImage] = []
        calls: list[SummaryToolCall] = []
        for block in message["content"]:
            if "toolResult" in block:
                result = block["toolResult"]
                content = "".join(part.get("text", "") for part in result["content"])
                messages.append(
                    SummaryMessage(role="tool", text=content, tool_call_id=result["toolUseId"])
                )
            elif "text" in block:
                text.append(block["text"])
            elif "image" in block:
                images.append(_image(block["image"]))
            elif "toolUse" in block:
                use = block["toolUse"]
                calls.append(SummaryToolCall(use["name"], use["input"], use["toolUseId"]))
        if text or images or calls:
            messages.append(
                SummaryMessage(
                    role=message["role"], text="".join(text), images=images, tool_calls=calls
                )
            )
    tools = [
        SummaryTool(
            name=tool["toolSpec"]["name"],
            description=tool["toolSpec"].get("description"),
            parameters=tool["toolSpec"]["inputSchema"]["json"],
        )
        for tool in (body.get("toolConfig") or {}).get("tools", [])
    ]
    inference = body.get("inferenceConfig") or {}
    return Summary(
        system="\n".join(block["text"] for block in body.get("system", []) if "text" in block),
        messages=messages,
        tools=tools,
        max_output_tokens=inference.get("maxTokens"),
        temperature=inference.get("temperature"),
        # Streaming is the endpoint (converse-stream), not a body field.
        stream=bool(body.get("__stream")),
    )


async def start() -> RunningSimulator:
    simulator = BedrockSimulator()
    await simulator.start()

    async def set_script(script: Script | None) -> None:
        simulator.script = script

    async def requests() -> list[dict[str, Any]]:
        return [
            {**record["body"], "__stream": record["path"].endswith("/converse-stream")}
            for record in simulator.recorded
        ]

    return RunningSimulator(
        base_url=simulator.base_url,
        api_key="",
        requests=requests,
        set_script=set_script,
        stop=simulator.stop,
        config={
            "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SECRET_KEY,
            "region": "us-east-1",
        },
    )


CASE = ConformanceCase(
    name="bedrock",
    provider="amazon-bedrock",
    model="amazon/nova-pro-v1",
    start_simulator=start,
    summarize=summarize,
    features=frozenset({"reasoning", "tool_call_ids", "cached_tokens", "images"}),
)
