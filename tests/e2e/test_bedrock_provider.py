"""Amazon Bedrock end to end: the openai SDK at Switchyard, Switchyard at the Converse simulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import openai
import pytest

from tests.servers import RunningServer, start_server
from tests.simulators.bedrock_sim import (
    ACCESS_KEY,
    SECRET_KEY,
    ThreadedBedrockSimulator,
)
from tests.simulators.openai_sim import Fault

NOVA = "amazon/nova-pro-v1"
PROMPT_PRICE = Decimal("0.0000008")
COMPLETION_PRICE = Decimal("0.0000032")
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def bedrock() -> Iterator[ThreadedBedrockSimulator]:
    simulator = ThreadedBedrockSimulator()
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def bedrock_server(
    bedrock: ThreadedBedrockSimulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    config = (
        "[local]\nenabled = false\n\n[providers.amazon-bedrock]\n"
        f'base_url = "{bedrock.base_url}"\nregion = "us-west-2"\n'
        f'aws_access_key_id = "{ACCESS_KEY}"\naws_secret_access_key = "{SECRET_KEY}"\n'
    )
    running = start_server(tmp_path_factory.mktemp("bedrock"), config)
    yield running
    running.stop()


def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0)


def test_a_completion_is_priced_from_the_catalog(
    bedrock: ThreadedBedrockSimulator, bedrock_server: RunningServer
) -> None:
    result = client(bedrock_server).chat.completions.create(
        model=NOVA,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello?"},
        ],
        max_tokens=50,
    )
    assert result.choices[0].message.content == "Hello from the Bedrock simulator."
    assert result.choices[0].finish_reason == "stop"
    usage = result.usage
    assert usage is not None
    expected = usage.prompt_tokens * PROMPT_PRICE + usage.completion_tokens * COMPLETION_PRICE
    assert Decimal(str(usage.model_extra["cost"])) == expected  # type: ignore[index]
    sent = bedrock.recorded()[-1]
    assert sent["model"] == "amazon.nova-pro-v1:0"
    assert sent["body"]["system"] == [{"text": "Be brief."}]
    assert sent["body"]["inferenceConfig"] == {"maxTokens": 50}


def test_a_streamed_tool_call_arrives_whole(bedrock_server: RunningServer) -> None:
    stream = client(bedrock_server).chat.completions.create(
        model=NOVA,
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[TOOL],  # type: ignore[list-item]
        tool_choice="required",
        stream=True,
        stream_options={"include_usage": True},
    )
    name, arguments, finish, usage = "", "", None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                name += (call.function.name or "") if call.function else ""
                arguments += (call.function.arguments or "") if call.function else ""
            finish = choice.finish_reason or finish
    assert name == "get_weather"
    assert json.loads(arguments) == {}
    assert finish == "tool_calls"
    assert usage is not None and usage.completion_tokens == 5


def test_throttling_surfaces_as_429_with_bedrocks_error(
    bedrock: ThreadedBedrockSimulator, bedrock_server: RunningServer
) -> None:
    bedrock.add_fault(Fault(kind="status", status=429, retry_after=3))
    with pytest.raises(openai.RateLimitError) as caught:
        client(bedrock_server).chat.completions.create(
            model=NOVA, messages=[{"role": "user", "content": "hi"}]
        )
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["metadata"]["raw"]["type"] == "ThrottlingException"
