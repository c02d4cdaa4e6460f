"""Streams ended by us: past max_stream_seconds, or at the end of a shutdown's grace period.
Either way the client gets an error chunk, the upstream is closed, and the generation is
settled and charged for what was generated."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from switchyard import tokens
from switchyard.accounting.keys import KeyRecord, KeyStore
from switchyard.accounting.ledger import Ledger
from switchyard.accounting.meter import CallContext, Meter
from switchyard.accounting.writer import UsageWriter
from switchyard.catalog import Endpoint, load_catalog
from switchyard.completions import ChatService
from switchyard.errors import InvalidRequest, ShuttingDown
from switchyard.shutdown import Drain, drain_on_signals
from switchyard.wire.chat import ChatChunk, ChatRequest, Delta, StreamChoice
from switchyard.wire.codec import decode_request

MODEL = "openai/gpt-4o"


class _Upstream:
    """Yields ``tokens`` chunks ``interval`` seconds apart, then (``stall``) goes silent."""

    def __init__(self, tokens: int, interval: float, stall: bool = True) -> None:
        self.tokens = tokens
        self.interval = interval
        self.stall = stall
        self.closed = False

    async def _chunks(self) -> AsyncIterator[ChatChunk]:
        for i in range(self.tokens):
            if i:
                await asyncio.sleep(self.interval)
            yield ChatChunk(
                id="up",
                created=0,
                model=MODEL,
                choices=[StreamChoice(index=0, delta=Delta(content=f" word{i}"))],
            )
        if self.stall:
            await asyncio.Event().wait()  # a provider that stops talking

    def __aiter__(self) -> AsyncIterator[ChatChunk]:
        return self._chunks()

    async def aclose(self) -> None:
        self.closed = True


class _Provider:
    def __init__(self, spec: Any, upstream: _Upstream) -> None:
        self.spec = spec
        self.upstream = upstream

    def start(self) -> None:
        return None

    def stats(self) -> dict[str, int]:
        return {}

    async def complete(self, request: ChatRequest, endpoint: Endpoint) -> Any:
        await asyncio.Event().wait()  # a provider that never answers

    async def open_stream(self, request: ChatRequest, endpoint: Endpoint) -> _Upstream:
        return self.upstream

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def writer(db: Any, tmp_path: Path) -> AsyncIterator[UsageWriter]:
    usage_writer = UsageWriter(db, tmp_path / "journal", flush_interval=3600)
    await usage_writer.start()
    yield usage_writer
    await usage_writer.aclose()


@pytest.fixture(scope="module", autouse=True)
def _warm_tokenizer() -> None:
    # Loading an encoding takes a second or more: not what the timings here measure.
    tokens.encoding(load_catalog().models[MODEL].encoding)


@pytest.fixture
async def key(keys: KeyStore) -> KeyRecord:
    _, record = await keys.create_key(name="k")
    return record


def _service(
    keys: KeyStore, writer: UsageWriter, upstream: _Upstream, **limits: Any
) -> ChatService:
    catalog = load_catalog()
    provider = _Provider(catalog.providers["openai"], upstream)
    return ChatService(catalog, {"openai": provider}, Meter(Ledger(keys), writer), 0.05, **limits)


async def _run(
    service: ChatService, key: KeyRecord, messages: int = 1, opened: asyncio.Event | None = None
) -> tuple[list[ChatChunk], str]:
    body = {
        "model": MODEL,
        "stream": True,
        "messages": [{"role": "user", "content": "Hi"}] * messages,
    }
    raw = json.dumps(body).encode()
    request = decode_request(raw, ChatRequest)
    prepared = await service.prepare(request, len(raw))
    session = await service.open_stream(request, prepared, CallContext(key, "gen-cut", True))
    if opened is not None:
        opened.set()
    chunks = [c async for c in session.events() if c is not None]
    return chunks, session.generation_id


async def test_a_stream_past_its_limit_is_cut_and_charged(
    keys: KeyStore, writer: UsageWriter, key: KeyRecord
) -> None:
    upstream = _Upstream(tokens=1000, interval=0.02)
    service = _service(keys, writer, upstream, max_stream_seconds=0.3)
    loop = asyncio.get_running_loop()
    opened = asyncio.Event()
    run = asyncio.ensure_future(_run(service, key, opened=opened))
    await opened.wait()
    started = loop.time()
    chunks, generation_id = await asyncio.wait_for(run, 5)
    assert 0.3 <= loop.time() - started < 0.6
    last = chunks[-1]
    assert last.choices[0].finish_reason == "error"
    assert last.error is not None and last.error.code == 408  # type: ignore[union-attr]
    assert upstream.closed
    record = writer.pending(generation_id)
    assert record is not None and record.cancelled
    assert record.tokens_completion >= len(chunks) - 1 > 3
    assert record.total_cost > 0


async def test_a_stalled_stream_is_cut_when_the_grace_period_ends(
    keys: KeyStore, writer: UsageWriter, key: KeyRecord
) -> None:
    # The upstream goes silent after three tokens; the stream's own limit is far away.
    upstream = _Upstream(tokens=3, interval=0.01)
    drain = Drain(grace_seconds=0.2)
    service = _service(keys, writer, upstream, max_stream_seconds=3600, drain=drain)
    loop = asyncio.get_running_loop()
    opened = asyncio.Event()
    run = asyncio.ensure_future(_run(service, key, opened=opened))
    await opened.wait()
    await asyncio.sleep(0.1)  # waiting on the silent upstream now
    began = loop.time()
    drain.begin()
    chunks, generation_id = await asyncio.wait_for(run, 2)
    assert 0.2 <= loop.time() - began < 0.4  # the wait in progress was cut short
    last = chunks[-1]
    assert last.error is not None and last.error.code == 503  # type: ignore[union-attr]
    assert "shutting down" in last.error.message  # type: ignore[union-attr]
    assert upstream.closed
    record = writer.pending(generation_id)
    assert record is not None and record.tokens_completion > 0 and record.total_cost > 0


async def test_a_stalled_stream_is_cut_at_its_own_limit(
    keys: KeyStore, writer: UsageWriter, key: KeyRecord
) -> None:
    upstream = _Upstream(tokens=3, interval=0.01)  # then silent, with no shutdown
    service = _service(keys, writer, upstream, max_stream_seconds=0.3)
    loop = asyncio.get_running_loop()
    opened = asyncio.Event()
    run = asyncio.ensure_future(_run(service, key, opened=opened))
    await opened.wait()
    started = loop.time()
    chunks, _generation_id = await asyncio.wait_for(run, 2)
    assert 0.3 <= loop.time() - started < 0.6
    assert chunks[-1].error is not None and chunks[-1].error.code == 408  # type: ignore[union-attr]
    assert upstream.closed


async def test_a_client_leaving_during_a_wait_is_a_cancellation_not_a_cut(
    keys: KeyStore, writer: UsageWriter, key: KeyRecord
) -> None:
    upstream = _Upstream(tokens=3, interval=0.01)
    service = _service(keys, writer, upstream, max_stream_seconds=0.3)
    opened = asyncio.Event()
    run = asyncio.ensure_future(_run(service, key, opened=opened))
    await opened.wait()
    await asyncio.sleep(0.1)  # waiting on the silent upstream, the cut still ahead
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert upstream.closed


async def test_a_stream_waiting_for_its_first_token_is_cut_too(
    keys: KeyStore, writer: UsageWriter, key: KeyRecord
) -> None:
    upstream = _Upstream(tokens=0, interval=0)
    drain = Drain(grace_seconds=0.1)
    service = _service(keys, writer, upstream, drain=drain)
    opened = asyncio.Event()
    run = asyncio.ensure_future(_run(service, key, opened=opened))
    await opened.wait()
    await asyncio.sleep(0.1)
    drain.begin()
    chunks, generation_id = await asyncio.wait_for(run, 2)
    assert chunks[-1].error is not None and chunks[-1].error.code == 503  # type: ignore[union-attr]
    record = writer.pending(generation_id)
    assert record is not None and record.total_cost == 0  # nothing generated, nothing owed


async def test_more_messages_than_allowed_is_a_400_naming_messages(
    keys: KeyStore, writer: UsageWriter, key: KeyRecord
) -> None:
    service = _service(keys, writer, _Upstream(1, 0, stall=False), max_messages=2)
    with pytest.raises(InvalidRequest) as refused:
        await _run(service, key, messages=3)
    assert refused.value.field == "messages"
    chunks, _ = await _run(service, key, messages=2)
    assert chunks[-1].usage is not None


async def test_signals_start_the_drain_and_still_reach_the_server() -> None:
    told: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: told.append(signum))
    try:
        drain = Drain(grace_seconds=5)
        with drain_on_signals(drain):
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(0.05)
            assert drain.draining
            assert told == [signal.SIGTERM]  # the server's own handler ran too
        assert signal.getsignal(signal.SIGTERM) is not None
        os.kill(os.getpid(), signal.SIGTERM)
        assert told == [signal.SIGTERM, signal.SIGTERM]  # restored: ours is gone
    finally:
        signal.signal(signal.SIGTERM, previous)


async def test_without_a_server_handler_signals_are_left_alone() -> None:
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with drain_on_signals(Drain(grace_seconds=5)):
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)


async def test_a_request_still_waiting_at_the_deadline_gets_a_503(
    keys: KeyStore, writer: UsageWriter, key: KeyRecord
) -> None:
    drain = Drain(grace_seconds=0.1)
    service = _service(keys, writer, _Upstream(0, 0), drain=drain)
    raw = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}).encode()
    request = decode_request(raw, ChatRequest)
    prepared = await service.prepare(request, len(raw))
    call = asyncio.ensure_future(
        service.complete(request, prepared, CallContext(key, "gen-wait", False))
    )
    await asyncio.sleep(0.05)
    drain.begin()
    with pytest.raises(ShuttingDown) as refused:
        await asyncio.wait_for(call, 2)
    assert refused.value.status == 503 and refused.value.headers["Retry-After"] == "1"
