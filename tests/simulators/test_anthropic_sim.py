"""Protocol-conformance tests of the Anthropic simulator, driven by the official SDK.

Every response and stream event is parsed by the ``anthropic`` SDK's own types and must not
carry fields those types do not declare, so the simulator cannot drift from the API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx
import pydantic
import pytest
from anthropic.types import Message, RawMessageStreamEvent

from tests.conformance.contract import Script, ScriptedToolCall, ScriptedUsage

from .anthropic_sim import DEFAULT_REPLY, DEFAULT_THINKING, SimulatorHandle, run_in_thread

MODEL = "claude-haiku-4-5-20251001"
HELLO: Any = [{"role": "user", "content": "What is up?"}]
WEATHER: Any = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    },
}
TIME: Any = {
    "name": "get_time",
    "input_schema": {
        "type": "object",
        "properties": {"zone": {"type": "string"}},
        "required": ["zone"],
    },
}
_stream_adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RawMessageStreamEvent)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with run_in_thread() as handle:
        yield handle


@pytest.fixture(autouse=True)
def _fresh(sim: SimulatorHandle) -> None:
    sim.reset()


@pytest.fixture
async def client(sim: SimulatorHandle) -> AsyncIterator[anthropic.AsyncAnthropic]:
    # Pinned to the API version Switchyard speaks (the SDK's default is newer).
    async with anthropic.AsyncAnthropic(
        base_url=sim.base_url,
        api_key=sim.api_key,
        max_retries=0,
        timeout=5,
        default_headers={"anthropic-version": "2023-06-01"},
    ) as c:
        yield c


def assert_declared_only(value: object, path: str = "$") -> None:
    """Fail if any (nested) model carries fields its SDK type does not declare."""
    if isinstance(value, pydantic.BaseModel):
        assert not value.model_extra, f"{path}: undeclared fields {sorted(value.model_extra)}"
        for name in type(value).model_fields:
            assert_declared_only(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            assert_declared_only(item, f"{path}[{index}]")


async def create(client: anthropic.AsyncAnthropic, **params: Any) -> Message:
    """messages.create, with the raw body validated strictly against the SDK type."""
    params.setdefault("model", MODEL)
    params.setdefault("max_tokens", 256)
    params.setdefault("messages", HELLO)
    raw = await client.messages.with_raw_response.create(**params)
    message = await raw.parse()
    strict = Message.model_validate(raw.http_response.json(), strict=True)
    assert_declared_only(strict)
    return message


async def stream_events(client: anthropic.AsyncAnthropic, **params: Any) -> list[Any]:
    params.setdefault("model", MODEL)
    params.setdefault("max_tokens", 256)
    params.setdefault("messages", HELLO)
    events = []
    async with await client.messages.create(stream=True, **params) as stream:
        async for event in stream:
            assert_declared_only(event)
            events.append(event)
    return events


# --- replies -----------------------------------------------------------------------------


async def test_create_returns_a_message(client: anthropic.AsyncAnthropic) -> None:
    message = await create(client)
    assert message.type == "message" and message.role == "assistant"
    assert message.model == MODEL
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == DEFAULT_REPLY  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and message.usage.output_tokens == 5


async def test_stream_has_the_api_event_sequence(client: anthropic.AsyncAnthropic) -> None:
    events = await stream_events(client)
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds[1] == "content_block_start" and kinds[-3] == "content_block_stop"
    assert events[0].message.content == [] and events[0].message.stop_reason is None
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == DEFAULT_REPLY
    assert events[-2].delta.stop_reason == "end_turn" and events[-2].usage.output_tokens == 5


async def test_stream_helper_accumulates_the_message(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.stream(
        model=MODEL, max_tokens=256, messages=HELLO, tools=[WEATHER, TIME]
    ) as stream:
        final = await stream.get_final_message()
    assert [b.type for b in final.content] == ["tool_use", "tool_use"]
    assert final.content[0].input == {"city": "x", "days": 1}  # type: ignore[union-attr]
    assert final.content[1].input == {"zone": "x"}  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"


async def test_tool_input_streams_in_several_fragments(client: anthropic.AsyncAnthropic) -> None:
    events = await stream_events(client, tools=[WEATHER], tool_choice={"type": "any"})
    fragments = [
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    assert len([f for f in fragments if f]) >= 2
    assert "".join(fragments) == '{"city":"x","days":1}'


async def test_disable_parallel_tool_use_gives_one_call(client: anthropic.AsyncAnthropic) -> None:
    message = await create(
        client,
        tools=[WEATHER, TIME],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
    )
    assert [b.type for b in message.content] == ["tool_use"]


async def test_named_tool_choice(client: anthropic.AsyncAnthropic) -> None:
    message = await create(
        client, tools=[WEATHER, TIME], tool_choice={"type": "tool", "name": "get_time"}
    )
    assert [b.name for b in message.content] == ["get_time"]  # type: ignore[union-attr]


async def test_thinking_block_with_signature(client: anthropic.AsyncAnthropic) -> None:
    thinking: Any = {"type": "enabled", "budget_tokens": 1024}
    message = await create(client, max_tokens=2048, thinking=thinking)
    assert [b.type for b in message.content] == ["thinking", "text"]
    block = message.content[0]
    assert block.thinking == DEFAULT_THINKING and block.signature  # type: ignore[union-attr]
    assert message.usage.output_tokens_details is not None
    assert message.usage.output_tokens_details.thinking_tokens > 0

    async with client.messages.stream(
        model=MODEL, max_tokens=2048, messages=HELLO, thinking=thinking
    ) as stream:
        final = await stream.get_final_message()
    assert final.content[0].signature == block.signature  # type: ignore[union-attr]
    assert final.content[0].thinking == DEFAULT_THINKING  # type: ignore[union-attr]


async def test_stop_sequence_and_max_tokens(client: anthropic.AsyncAnthropic) -> None:
    message = await create(client, stop_sequences=[" simulator"])
    assert message.content[0].text == "Hello from the"  # type: ignore[union-attr]
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == " simulator"
    message = await create(client, max_tokens=2)
    assert message.content[0].text == "Hello from"  # type: ignore[union-attr]
    assert message.stop_reason == "max_tokens"


async def test_structured_output_follows_the_schema(client: anthropic.AsyncAnthropic) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    output_config: Any = {"format": {"type": "json_schema", "schema": schema}}
    message = await create(client, output_config=output_config)
    assert message.content[0].text == '{"n":1}'  # type: ignore[union-attr]


async def test_cache_usage(sim: SimulatorHandle, client: anthropic.AsyncAnthropic) -> None:
    sim.configure(cache_read_tokens=3, cache_write_tokens=2)
    plain = await create(client)
    sim.configure(cache_read_tokens=0, cache_write_tokens=0)
    total = (await create(client)).usage.input_tokens
    assert plain.usage.cache_read_input_tokens == 3
    assert plain.usage.cache_creation_input_tokens == 2
    assert plain.usage.input_tokens == total - 5


async def test_script_is_rendered_exactly(
    sim: SimulatorHandle, client: anthropic.AsyncAnthropic
) -> None:
    sim.set_script(
        Script(
            text="Checking.",
            reasoning="Think first.",
            tool_calls=[ScriptedToolCall("toolu_1", "get_weather", {"city": "Lyon"})],
            finish_reason="tool_calls",
            usage=ScriptedUsage(
                prompt_tokens=180, completion_tokens=64, cached_tokens=128, reasoning_tokens=20
            ),
        )
    )
    message = await create(client)
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens == 52 and message.usage.cache_read_input_tokens == 128
    async with client.messages.stream(model=MODEL, max_tokens=256, messages=HELLO) as stream:
        final = await stream.get_final_message()
    assert final.content[2].input == {"city": "Lyon"}  # type: ignore[union-attr]
    assert final.content[0].thinking == "Think first."  # type: ignore[union-attr]
    assert final.usage.output_tokens == 64


# --- validation --------------------------------------------------------------------------


async def _rejected(client: anthropic.AsyncAnthropic, **params: Any) -> str:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await create(client, **params)
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    return str(body["error"]["message"])


async def test_roles_must_alternate(client: anthropic.AsyncAnthropic) -> None:
    messages = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    assert "alternate" in await _rejected(client, messages=messages)


async def test_first_turn_is_user(client: anthropic.AsyncAnthropic) -> None:
    assert "first message" in await _rejected(
        client, messages=[{"role": "assistant", "content": "a"}]
    )


async def test_tool_results_answer_the_previous_tool_uses(client: anthropic.AsyncAnthropic) -> None:
    use = {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}}
    wrong = {"type": "tool_result", "tool_use_id": "toolu_b", "content": "sunny"}
    right = {"type": "tool_result", "tool_use_id": "toolu_a", "content": "sunny"}
    base = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [use]}]
    message = await _rejected(client, messages=[*base, {"role": "user", "content": [wrong]}])
    assert "toolu_b" in message
    message = await _rejected(client, messages=[*base, {"role": "user", "content": "and?"}])
    assert "without `tool_result`" in message
    ok = await create(client, messages=[*base, {"role": "user", "content": [right]}])
    assert ok.stop_reason == "end_turn"


async def test_sampling_and_thinking_limits(client: anthropic.AsyncAnthropic) -> None:
    assert "temperature" in await _rejected(client, extra_body={"temperature": 1.5})
    thinking: Any = {"type": "enabled", "budget_tokens": 1024}
    assert "budget_tokens" in await _rejected(client, max_tokens=1024, thinking=thinking)
    assert "1024" in await _rejected(
        client, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 500}
    )
    assert "forces tool use" in await _rejected(
        client, max_tokens=4096, thinking=thinking, tools=[WEATHER], tool_choice={"type": "any"}
    )


async def test_sampling_parameters_are_gone_in_2026_10_21(sim: SimulatorHandle) -> None:
    async with anthropic.AsyncAnthropic(base_url=sim.base_url, api_key=sim.api_key) as latest:
        assert (await create(latest)).stop_reason == "end_turn"  # Bearer key, new version
        with pytest.raises(anthropic.BadRequestError, match="top_p"):
            await create(latest, extra_body={"top_p": 0.5})


async def test_documents(client: anthropic.AsyncAnthropic) -> None:
    pdf = {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}
    text = {"type": "text", "media_type": "text/plain", "data": "hello"}
    blocks = [
        {"type": "document", "source": pdf, "title": "a.pdf"},
        {"type": "document", "source": text},
        {"type": "text", "text": "Summarise"},
    ]
    ok = await create(client, messages=[{"role": "user", "content": blocks}])
    assert ok.stop_reason == "end_turn"
    bad = [{"type": "document", "source": {**pdf, "media_type": "application/zip"}}]
    assert "application/pdf" in await _rejected(client, messages=[{"role": "user", "content": bad}])


async def test_empty_text_blocks_are_refused(client: anthropic.AsyncAnthropic) -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": ""}]}]
    assert "non-empty" in await _rejected(client, messages=messages)


async def test_headers_and_required_fields(sim: SimulatorHandle) -> None:
    url = sim.base_url + "/v1/messages"
    body = {"model": MODEL, "max_tokens": 10, "messages": HELLO}
    async with httpx.AsyncClient() as http:
        missing_key = await http.post(url, json=body, headers={"anthropic-version": "2023-06-01"})
        assert missing_key.status_code == 401
        assert missing_key.json()["error"]["type"] == "authentication_error"
        headers = {"x-api-key": sim.api_key}
        no_version = await http.post(url, json=body, headers=headers)
        assert no_version.status_code == 400
        assert "anthropic-version" in no_version.json()["error"]["message"]
        headers["anthropic-version"] = "2023-06-01"
        no_max = await http.post(url, json={**body, "max_tokens": None}, headers=headers)
        assert no_max.status_code == 400
        assert no_max.json()["error"]["message"] == "max_tokens: Field required"
        assert (await http.post(url, json=body, headers=headers)).status_code == 200


async def test_wrong_key_is_an_authentication_error(sim: SimulatorHandle) -> None:
    async with anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="nope", max_retries=0) as c:
        with pytest.raises(anthropic.AuthenticationError):
            await c.messages.create(model=MODEL, max_tokens=5, messages=HELLO)


# --- faults ------------------------------------------------------------------------------


async def test_overloaded_and_rate_limited(
    sim: SimulatorHandle, client: anthropic.AsyncAnthropic
) -> None:
    sim.add_faults(
        {"kind": "status", "status": 529}, {"kind": "status", "status": 429, "retry_after": 7}
    )
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        await create(client)
    assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    with pytest.raises(anthropic.RateLimitError) as limited:
        await create(client)
    assert limited.value.response.headers["retry-after"] == "7"
    assert (await create(client)).stop_reason == "end_turn"


async def test_error_event_mid_stream(
    sim: SimulatorHandle, client: anthropic.AsyncAnthropic
) -> None:
    sim.add_faults({"kind": "error_event", "after_events": 3})
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        async for event in await client.messages.create(
            model=MODEL, max_tokens=50, messages=HELLO, stream=True
        ):
            seen.append(event.type)
    assert len(seen) == 2  # message_start, content_block_start (ping is skipped)
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


async def test_reset_and_disconnect(sim: SimulatorHandle, client: anthropic.AsyncAnthropic) -> None:
    sim.add_faults({"kind": "reset"}, {"kind": "disconnect_mid_stream", "after_events": 4})
    with pytest.raises(anthropic.APIConnectionError):
        await create(client)
    # The SDK lets a read error in the middle of a stream through unwrapped.
    with pytest.raises(Exception) as broken:
        await stream_events(client)
    assert isinstance(broken.value, anthropic.APIConnectionError) or "ReadError" in repr(
        broken.value
    )
    assert sim.stats()["faults_applied"] == 2


async def test_latency_fault_delays_the_answer(
    sim: SimulatorHandle, client: anthropic.AsyncAnthropic
) -> None:
    import time

    sim.add_faults({"kind": "latency", "ms": 300})
    started = time.perf_counter()
    await create(client)
    assert time.perf_counter() - started >= 0.3


async def test_requests_are_recorded_without_the_key(
    sim: SimulatorHandle, client: anthropic.AsyncAnthropic
) -> None:
    await create(client, metadata={"user_id": "u-1"})
    (record,) = sim.requests()
    assert record["body"]["metadata"] == {"user_id": "u-1"}
    assert "x-api-key" not in record["headers"]
    assert record["headers"]["anthropic-version"] == "2023-06-01"
    async with httpx.AsyncClient() as http:
        listed = (await http.get(sim.base_url + "/__sim/requests")).json()
    assert listed["requests"][0]["body"]["model"] == MODEL


def test_raw_events_validate_as_sdk_types() -> None:
    from .anthropic_sim import _Reply, _stream_events

    reply = _Reply(
        blocks=[
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "Hi there"},
        ],
        stop_reason="end_turn",
        input_tokens=3,
        output_tokens=2,
    )
    import msgspec

    for frame in _stream_events(reply, MODEL):
        name, data = frame.decode().strip().split("\n")
        payload = msgspec.json.decode(data.removeprefix("data: "))
        assert name == f"event: {payload['type']}"
        if payload["type"] != "ping":
            assert_declared_only(_stream_adapter.validate_python(payload, strict=True))
