"""The Bedrock simulator, checked by boto3's own bedrock-runtime client.

botocore parses every response and event-stream message against the service model, and
signs every request with SigV4: a simulator that accepts boto3's signatures and whose
output boto3 parses speaks the published protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import boto3
import botocore.exceptions
import pytest

from tests.conformance.contract import Script, ScriptedToolCall, ScriptedUsage
from tests.simulators.bedrock_sim import ACCESS_KEY, SECRET_KEY, BedrockSimulator
from tests.simulators.openai_sim import Fault

MODEL = "amazon.nova-pro-v1:0"


@pytest.fixture
async def simulator() -> AsyncIterator[BedrockSimulator]:
    sim = BedrockSimulator()
    await sim.start()
    yield sim
    await sim.stop()


def _client(sim: BedrockSimulator, secret: str = SECRET_KEY) -> Any:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=sim.base_url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"total_max_attempts": 1}),
    )


def _converse(sim: BedrockSimulator, **kw: Any) -> Any:
    return _client(sim).converse(modelId=MODEL, **kw)


def _stream_events(sim: BedrockSimulator, **kw: Any) -> list[dict[str, Any]]:
    response = _client(sim).converse_stream(modelId=MODEL, **kw)
    return list(response["stream"])


USER = [{"role": "user", "content": [{"text": "Hi"}]}]


async def test_boto3_signs_and_parses_a_reply(simulator: BedrockSimulator) -> None:
    reply = await asyncio.to_thread(_converse, simulator, messages=USER)
    assert reply["output"]["message"]["content"] == [{"text": "Hello from the Bedrock simulator."}]
    assert reply["stopReason"] == "end_turn"
    assert reply["usage"]["outputTokens"] > 0
    assert simulator.recorded[-1]["model"] == MODEL


async def test_a_wrong_secret_is_refused_as_aws_does(simulator: BedrockSimulator) -> None:
    def call() -> None:
        _client(simulator, secret="not-the-secret").converse(modelId=MODEL, messages=USER)

    with pytest.raises(botocore.exceptions.ClientError) as caught:
        await asyncio.to_thread(call)
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"


async def test_the_stream_parses_event_by_event(simulator: BedrockSimulator) -> None:
    script = Script(
        text="Two calls.",
        reasoning="Think first.",
        tool_calls=[ScriptedToolCall("t1", "get_weather", {"city": "Lyon"})],
        finish_reason="tool_calls",
        usage=ScriptedUsage(prompt_tokens=50, completion_tokens=9, cached_tokens=20),
    )
    simulator.script = script
    tools = {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {}}}}]}
    events = await asyncio.to_thread(_stream_events, simulator, messages=USER, toolConfig=tools)
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    text = "".join(
        e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e
    )
    assert text == "Two calls."
    start = next(e["contentBlockStart"] for e in events if "contentBlockStart" in e)
    assert start["start"]["toolUse"] == {"toolUseId": "t1", "name": "get_weather"}
    assert events[-2]["messageStop"]["stopReason"] == "tool_use"
    usage = events[-1]["metadata"]["usage"]
    assert (usage["inputTokens"], usage["cacheReadInputTokens"]) == (30, 20)


async def test_tool_blocks_without_tool_config_are_refused(simulator: BedrockSimulator) -> None:
    messages = [
        *USER,
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": "a", "name": "f", "input": {}}}],
        },
        {
            "role": "user",
            "content": [{"toolResult": {"toolUseId": "a", "content": [{"text": "1"}]}}],
        },
    ]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        await asyncio.to_thread(_converse, simulator, messages=messages)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "toolConfig" in error["Message"]


async def test_roles_must_alternate(simulator: BedrockSimulator) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        await asyncio.to_thread(_converse, simulator, messages=USER + USER)
    assert "alternate" in caught.value.response["Error"]["Message"]


async def test_a_status_fault_reaches_boto3_as_its_exception(
    simulator: BedrockSimulator,
) -> None:
    simulator.faults.append(Fault(kind="status", status=429))
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        await asyncio.to_thread(_converse, simulator, messages=USER)
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
