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
from switchyard.accounting.writer import UsageWriter
from switchyard.catalog import Catalog, load_catalog
from switchyard.catalog.views import CatalogView
from switchyard.completions import ChatService
from switchyard.providers.base import Provider
from switchyard.providers.registry import build_providers
from switchyard.routing.health import HealthTracker
from switchyard.settings import Settings
from switchyard.storage import Database, open_database
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

    async def start(self) -> None:
        """Replay journalled usage, then warm up providers."""
        await self.writer.start()
        for provider in self.providers.values():
            provider.start()

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
        await self.upstream.aclose()
        await self.writer.aclose()
        await self.db.close()


def state_of(request: Request) -> AppState:
    """The process's state, which the app's lifespan attached when the server started."""
    state: AppState = request.app.state.switchyard
    return state


async def build_state(settings: Settings, environ: Mapping[str, str] | None = None) -> AppState:
    """Load and validate everything; raise before serving if anything is wrong."""
    env = os.environ if environ is None else environ
    catalog = load_catalog([Path(p) for p in settings.catalog_files], settings.catalog_extra())
    db = open_database(settings.database_url, settings.data_path)
    await db.connect()
    upstream = UpstreamClient(
        connect_timeout=settings.upstream_connect_timeout,
        read_timeout=settings.upstream_read_timeout,
    )
    providers = build_providers(catalog, settings, upstream, env)
    log.info("providers available: %s", ", ".join(sorted(providers)) or "none")
    _warm_tokenizers(catalog)
    keys = KeyStore(db, settings.key_cache_seconds)
    ledger = Ledger(keys)
    writer = UsageWriter(
        db, settings.data_path / "journal", flush_interval=settings.usage_flush_interval
    )
    return AppState(
        settings=settings,
        catalog=catalog,
        view=CatalogView(catalog, providers.keys()),
        db=db,
        keys=keys,
        ledger=ledger,
        writer=writer,
        upstream=upstream,
        providers=providers,
        chat=ChatService(
            catalog,
            providers,
            Meter(ledger, writer),
            settings.keepalive_interval,
            HealthTracker(
                breaker_failures=settings.breaker_failures,
                breaker_cooldown=settings.breaker_cooldown,
            ),
        ),
    )


def _warm_tokenizers(catalog: Catalog) -> None:
    """Load the encodings in the background so the first long prompt does not pay for it."""
    names = {m.encoding for m in catalog.models.values() if m.encoding != "native"}

    def warm() -> None:
        for name in sorted(names):
            tokens.encoding(name)

    threading.Thread(target=warm, name="warm-tokenizers", daemon=True).start()
