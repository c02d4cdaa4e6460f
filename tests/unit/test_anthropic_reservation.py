"""Credit reservations for Claude, whose prompts Switchyard estimates (encoding native)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from switchyard.accounting.keys import KeyStore
from switchyard.accounting.ledger import Ledger
from switchyard.accounting.meter import CallContext, Meter
from switchyard.accounting.writer import UsageWriter
from switchyard.catalog import Endpoint, load_catalog
from switchyard.completions import ChatService
from switchyard.errors import PaymentRequired
from switchyard.storage.sqlite import SQLiteDatabase
from switchyard.wire.chat import ChatRequest
from switchyard.wire.codec import decode_request


class _MustNotBeCalled:
    """A provider that fails the test if a request gets as far as the upstream."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec

    def start(self) -> None:
        return None

    def stats(self) -> dict[str, int]:
        return {}

    async def complete(self, request: ChatRequest, endpoint: Endpoint) -> Any:
        raise AssertionError("the request should have been refused with 402 before this")

    async def open_stream(self, request: ChatRequest, endpoint: Endpoint) -> Any:
        raise AssertionError("the request should have been refused with 402 before this")

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def writer(db: SQLiteDatabase, tmp_path: Path) -> AsyncIterator[UsageWriter]:
    usage_writer = UsageWriter(db, tmp_path / "journal", flush_interval=3600)
    await usage_writer.start()
    yield usage_writer
    await usage_writer.aclose()


async def test_a_prompt_the_key_cannot_afford_is_refused(
    keys: KeyStore, writer: UsageWriter
) -> None:
    catalog = load_catalog()
    provider = _MustNotBeCalled(catalog.providers["anthropic"])
    service = ChatService(catalog, {"anthropic": provider}, Meter(Ledger(keys), writer), 1.0)
    _, key = await keys.create_key(name="small", limit=Decimal("0.001"))
    # ~100k tokens of prompt cost about $0.30 on Claude Sonnet 4.5; one output token is cheap.
    body = {
        "model": "anthropic/claude-sonnet-4.5",
        "messages": [{"role": "user", "content": "word " * 100_000}],
        "max_tokens": 1,
    }
    raw = json.dumps(body).encode()
    request = decode_request(raw, ChatRequest)
    prepared = await service.prepare(request, len(raw))
    with pytest.raises(PaymentRequired):
        await service.complete(request, prepared, CallContext(key, "gen-x", False))
