"""The embeddings service: planning, fallback between endpoints, metering and cost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from switchyard import tokens
from switchyard.accounting.keys import KeyRecord, KeyStore
from switchyard.accounting.ledger import Ledger
from switchyard.accounting.meter import CallContext, Meter
from switchyard.accounting.writer import UsageWriter
from switchyard.catalog import Catalog, Endpoint, ProviderSpec, load_catalog
from switchyard.embeddings import EmbeddingsService, plan_embeddings, to_job
from switchyard.errors import (
    InvalidRequest,
    NoEndpoint,
    NotFound,
    PaymentRequired,
    SwitchyardError,
    UpstreamError,
    UpstreamUnavailable,
)
from switchyard.routing.plan import plan
from switchyard.storage.sqlite import SQLiteDatabase
from switchyard.wire.chat import ChatRequest
from switchyard.wire.embeddings import Embedded, EmbeddingJob, EmbeddingsRequest

SMALL = "openai/text-embedding-3-small"
E5 = "intfloat/multilingual-e5-small"
ALL = ("openai", "cheap", "local-embeddings")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    """The built-in catalog plus a second, cheaper host of text-embedding-3-small."""
    return load_catalog(
        extra={
            "providers": [{"slug": "cheap", "name": "Cheap", "protocol": "openai"}],
            "endpoints": [
                {
                    "model": SMALL,
                    "provider": "cheap",
                    "upstream_model": "te3s",
                    "context_length": 8192,
                    "pricing": {"prompt": "0.00000001"},
                }
            ],
        }
    )


def request(**fields: Any) -> EmbeddingsRequest:
    return msgspec.convert({"model": SMALL, "input": "hello", **fields}, EmbeddingsRequest)


def planned(catalog: Catalog, available: tuple[str, ...] = ALL, **fields: Any) -> list[str]:
    req = request(**fields)
    result = plan_embeddings(req, to_job(req), catalog, available, lambda slug: slug != ALL[2])
    return [c.endpoint.key for c in result.candidates]


def refusal(catalog: Catalog, available: tuple[str, ...] = ALL, **fields: Any) -> SwitchyardError:
    with pytest.raises(SwitchyardError) as caught:
        planned(catalog, available, **fields)
    return caught.value


# --- planning -------------------------------------------------------------------------------


def test_cheapest_first(catalog: Catalog) -> None:
    assert planned(catalog) == [f"{SMALL}@cheap", f"{SMALL}@openai"]


def test_provider_preferences(catalog: Catalog) -> None:
    assert planned(catalog, provider={"order": ["openai"]}) == [
        f"{SMALL}@openai",
        f"{SMALL}@cheap",
    ]
    only_openai = {"order": ["openai"], "allow_fallbacks": False}
    assert planned(catalog, provider=only_openai) == [f"{SMALL}@openai"]
    assert planned(catalog, provider={"ignore": ["cheap"]}) == [f"{SMALL}@openai"]
    assert planned(catalog, provider={"max_price": {"prompt": 0.015}}) == [f"{SMALL}@cheap"]


def test_unknown_and_chat_models_are_refused_naming_model(catalog: Catalog) -> None:
    unknown = refusal(catalog, model="openai/nope")
    assert (unknown.status, unknown.metadata) == (400, {"field": "model"})
    chat = refusal(catalog, model="openai/gpt-4o")
    assert chat.status == 400 and isinstance(chat, InvalidRequest) and chat.field == "model"
    assert "does not produce embeddings" in chat.message


def test_dimensions_only_where_the_model_supports_it(catalog: Catalog) -> None:
    assert planned(catalog, dimensions=256) == [f"{SMALL}@cheap", f"{SMALL}@openai"]
    error = refusal(catalog, model=E5, dimensions=256)
    assert isinstance(error, InvalidRequest) and error.field == "dimensions"
    ada = refusal(catalog, model="openai/text-embedding-ada-002", dimensions=8)
    assert isinstance(ada, InvalidRequest) and ada.field == "dimensions"


def test_token_arrays_need_an_embedder_that_takes_them(catalog: Catalog) -> None:
    assert planned(catalog, input=[[1, 2]]) == [f"{SMALL}@cheap", f"{SMALL}@openai"]
    error = refusal(catalog, model=E5, input=[[1, 2]])
    assert isinstance(error, InvalidRequest) and error.field == "input"


def test_unconfigured_provider_is_503_other_exclusions_404(catalog: Catalog) -> None:
    assert isinstance(refusal(catalog, available=("openai",), model=E5), NoEndpoint)
    assert isinstance(refusal(catalog, provider={"only": ["azure"]}), NotFound)


def test_chat_requests_to_embedding_models_are_refused_naming_model(catalog: Catalog) -> None:
    chat = msgspec.convert(
        {"model": SMALL, "messages": [{"role": "user", "content": "hi"}]}, ChatRequest
    )
    with pytest.raises(InvalidRequest, match="is an embeddings model") as caught:
        plan(chat, catalog, {"openai"}, lambda model: None)
    assert caught.value.field == "model"


# --- execution ------------------------------------------------------------------------------


class FakeEmbedder:
    """Plays an upstream: fails with the queued errors, then returns fixed-size vectors."""

    accepts_token_arrays = True

    def __init__(self, slug: str, *errors: Exception, reports_tokens: bool = True) -> None:
        self.spec = ProviderSpec(slug=slug, name=slug.title(), protocol="openai")
        self.errors = list(errors)
        self.reports_tokens = reports_tokens
        self.calls: list[tuple[EmbeddingJob, str]] = []

    def start(self) -> None:
        return None

    def stats(self) -> dict[str, int]:
        return {}

    async def embed(self, job: EmbeddingJob, endpoint: Endpoint) -> Embedded:
        self.calls.append((job, endpoint.key))
        if self.errors:
            raise self.errors.pop(0)
        vectors = np.full((len(job), 4), len(self.calls), dtype=np.float32)
        return Embedded(vectors, 1000 if self.reports_tokens else None)

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def writer(db: SQLiteDatabase, tmp_path: Path) -> AsyncIterator[UsageWriter]:
    usage_writer = UsageWriter(db, tmp_path / "journal", flush_interval=3600)
    await usage_writer.start()
    yield usage_writer
    await usage_writer.aclose()


@pytest.fixture
def meter(keys: KeyStore, writer: UsageWriter) -> Meter:
    return Meter(Ledger(keys), writer)


async def new_key(keys: KeyStore, limit: str | None = None) -> KeyRecord:
    _, record = await keys.create_key(name="k", limit=Decimal(limit) if limit else None)
    return record


async def test_falls_back_on_retryable_errors_and_records_attempts(
    catalog: Catalog, meter: Meter, keys: KeyStore, writer: UsageWriter
) -> None:
    cheap = FakeEmbedder("cheap", UpstreamUnavailable("down", provider="Cheap"))
    openai = FakeEmbedder("openai")
    service = EmbeddingsService(catalog, {"cheap": cheap, "openai": openai}, meter)
    req = request(input=["a", "b"])
    ctx = CallContext(await new_key(keys), "gen-fallback", False)
    result = await service.embed(req, service.prepare(req), ctx)
    assert [key for _, key in cheap.calls] == [f"{SMALL}@cheap"]
    assert [key for _, key in openai.calls] == [f"{SMALL}@openai"]
    assert result.model == SMALL and result.provider == "OpenAI"
    assert [d.index for d in result.data] == [0, 1]
    assert result.data[0].embedding == [1.0, 1.0, 1.0, 1.0]
    record = writer.pending("gen-fallback")
    assert record is not None
    assert record.endpoint == f"{SMALL}@openai"
    assert [r["status"] for r in record.provider_responses] == [503, 200]
    assert service.health.snapshot(f"{SMALL}@cheap", 0).uptime_5m is not None


async def test_a_refused_request_is_not_sent_elsewhere(
    catalog: Catalog, meter: Meter, keys: KeyStore
) -> None:
    bad = UpstreamError("too long", provider="Cheap", status=400, retryable=False)
    cheap, openai = FakeEmbedder("cheap", bad), FakeEmbedder("openai")
    service = EmbeddingsService(catalog, {"cheap": cheap, "openai": openai}, meter)
    req = request()
    with pytest.raises(UpstreamError) as caught:
        await service.embed(req, service.prepare(req), CallContext(await new_key(keys), "g", False))
    assert caught.value.status == 400
    assert openai.calls == []


async def test_cost_is_prompt_tokens_at_the_endpoint_price(
    catalog: Catalog, meter: Meter, keys: KeyStore, writer: UsageWriter
) -> None:
    service = EmbeddingsService(catalog, {"openai": FakeEmbedder("openai")}, meter)
    req = request()
    key = await new_key(keys)
    result = await service.embed(req, service.prepare(req), CallContext(key, "gen-cost", False))
    assert result.usage.prompt_tokens == result.usage.total_tokens == 1000
    assert result.usage.cost == Decimal("0.00002")  # 1000 x $0.02 per million
    record = writer.pending("gen-cost")
    assert record is not None
    assert (record.tokens_prompt, record.tokens_completion) == (1000, 0)
    assert record.total_cost == 20_000_000  # picodollars
    await writer.flush()
    row = await keys.usage_row(key.hash)
    assert row is not None and row["usage_total"] == 20_000_000


async def test_unreported_tokens_are_counted_with_the_model_encoding(
    catalog: Catalog, meter: Meter, keys: KeyStore
) -> None:
    embedder = FakeEmbedder("openai", reports_tokens=False)
    service = EmbeddingsService(catalog, {"openai": embedder}, meter)
    req = request(input=["hello world", "the quick brown fox"])
    result = await service.embed(
        req, service.prepare(req), CallContext(await new_key(keys), "g", False)
    )
    expected = tokens.count_text("hello world", "cl100k_base") + tokens.count_text(
        "the quick brown fox", "cl100k_base"
    )
    assert result.usage.prompt_tokens == expected == 6


async def test_a_key_limit_applies_before_anything_is_sent(
    catalog: Catalog, meter: Meter, keys: KeyStore
) -> None:
    embedder = FakeEmbedder("openai")
    service = EmbeddingsService(catalog, {"openai": embedder}, meter)
    req = request(input="word " * 5000)  # 5000 tokens: $0.0001
    poor = await new_key(keys, limit="0.00005")
    with pytest.raises(PaymentRequired):
        await service.embed(req, service.prepare(req), CallContext(poor, "g", False))
    assert embedder.calls == []
    rich = await new_key(keys, limit="1")
    await service.embed(req, service.prepare(req), CallContext(rich, "g2", False))
    assert len(embedder.calls) == 1
