"""Everything a handler needs, built once per process from the settings."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request

from switchyard import tokens
from switchyard.accounting.keys import KeyStore
from switchyard.accounting.ledger import Ledger
from switchyard.accounting.meter import Meter
from switchyard.accounting.shared_ledger import SharedLedger
from switchyard.accounting.writer import UsageWriter
from switchyard.catalog import Catalog, load_catalog
from switchyard.catalog.views import CatalogView
from switchyard.completions import ChatService
from switchyard.embeddings import EmbeddingsService
from switchyard.observability import Metrics, Telemetry
from switchyard.providers.base import Embedder, Provider
from switchyard.providers.registry import build_embedders, build_providers
from switchyard.ratelimit import RateLimiter
from switchyard.routing.health import HealthTracker
from switchyard.routing.shared_health import SharedBreakers
from switchyard.settings import Settings
from switchyard.shared.redis import SharedRedis
from switchyard.shutdown import Drain
from switchyard.stats.health_history import HealthRecorder
from switchyard.storage import Database, open_database
from switchyard.storage.credentials import with_stored_keys
from switchyard.upstream.client import UpstreamClient

log = logging.getLogger("switchyard")


@dataclass
class AppState:
    settings: Settings
    catalog: Catalog
    view: CatalogView
    db: Database
    keys: KeyStore
    ledger: Ledger
    writer: UsageWriter
    upstream: UpstreamClient
    providers: dict[str, Provider]
    chat: ChatService
    embedders: dict[str, Embedder]
    embeddings: EmbeddingsService
    health_recorder: HealthRecorder
    drain: Drain
    telemetry: Telemetry
    shared: SharedRedis | None = None
    breakers: SharedBreakers | None = None

    async def start(self) -> None:
        """Replay journalled usage, then warm up providers."""
        await self.writer.start()
        for provider in self.providers.values():
            provider.start()
        for embedder in self.embedders.values():
            embedder.start()
        if self.breakers is not None:
            self.breakers.start()
        self.health_recorder.start()

    async def aclose(self) -> None:
        await self.health_recorder.aclose()
        for provider in self.providers.values():
            await provider.aclose()
        for embedder in self.embedders.values():
            await embedder.aclose()
        await self.upstream.aclose()
        if self.breakers is not None:
            await self.breakers.aclose()
        if isinstance(self.ledger, SharedLedger):
            await self.ledger.aclose()
        await self.writer.aclose()
        if self.shared is not None:
            await self.shared.aclose()
        await self.db.close()


def state_of(request: Request) -> AppState:
    """The process's state, which the app's lifespan attached when the server started."""
    state: AppState = request.app.state.switchyard
    return state


async def build_state(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    telemetry: Telemetry | None = None,
) -> AppState:
    """Load and validate everything; raise before serving if anything is wrong."""
    env = os.environ if environ is None else environ
    telemetry = telemetry if telemetry is not None else Telemetry(Metrics())
    catalog = load_catalog([Path(p) for p in settings.catalog_files], settings.catalog_extra())
    db = open_database(settings.database_url, settings.data_path)
    await db.connect()
    try:
        settings = await with_stored_keys(settings, catalog, db, env)
    except BaseException:
        await db.close()
        raise
    upstream = UpstreamClient(
        connect_timeout=settings.upstream_connect_timeout,
        read_timeout=settings.upstream_read_timeout,
    )
    providers = build_providers(catalog, settings, upstream, env)
    log.info("providers available: %s", ", ".join(sorted(providers)) or "none")
    embedders = build_embedders(catalog, settings, upstream, env)
    log.info("embeddings providers available: %s", ", ".join(sorted(embedders)) or "none")
    _warm_tokenizers(catalog)
    keys = KeyStore(db, settings.key_cache_seconds)
    # One tracker: endpoint keys are unique across chat and embeddings models.
    health = HealthTracker(
        breaker_failures=settings.breaker_failures, breaker_cooldown=settings.breaker_cooldown
    )
    shared = (
        SharedRedis(settings.redis_url, prefix=settings.redis_prefix)
        if settings.redis_url
        else None
    )
    ledger = SharedLedger(keys, shared) if shared else Ledger(keys)
    breakers = None
    if shared is not None:
        endpoint_keys = [e.key for found in catalog.endpoints.values() for e in found]
        breakers = SharedBreakers(shared, health, endpoint_keys)
        log.info("shared state in Redis: reservations, rate limits, circuit breakers")
    writer = UsageWriter(
        db, settings.data_path / "journal", flush_interval=settings.usage_flush_interval
    )
    meter = Meter(ledger, writer, RateLimiter(settings.rate_limits, shared), telemetry)
    served_by = providers.keys() | embedders.keys()
    telemetry.metrics.watch_endpoints(
        (e for found in catalog.endpoints.values() for e in found if e.provider in served_by),
        health,
    )
    drain = Drain(settings.shutdown_grace_seconds)
    return AppState(
        settings=settings,
        catalog=catalog,
        view=CatalogView(catalog, providers.keys() | embedders.keys()),
        db=db,
        keys=keys,
        ledger=ledger,
        writer=writer,
        upstream=upstream,
        providers=providers,
        chat=ChatService(
            catalog,
            providers,
            meter,
            settings.keepalive_interval,
            health,
            max_messages=settings.max_messages,
            max_stream_seconds=settings.max_stream_seconds,
            drain=drain,
        ),
        embedders=embedders,
        embeddings=EmbeddingsService(catalog, embedders, meter, health),
        drain=drain,
        telemetry=telemetry,
        shared=shared,
        breakers=breakers,
        health_recorder=HealthRecorder(db, health, catalog, settings.health_sample_interval),
    )


def _warm_tokenizers(catalog: Catalog) -> None:
    """Load the encodings in the background so the first long prompt does not pay for it."""
    names = {m.encoding for m in catalog.models.values() if m.encoding != "native"}

    def warm() -> None:
        for name in sorted(names):
            tokens.encoding(name)

    threading.Thread(target=warm, name="warm-tokenizers", daemon=True).start()
