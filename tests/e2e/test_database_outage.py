"""PostgreSQL briefly unreachable: keep serving known keys, buffer acknowledged usage and
write it when the database returns; a key never seen gets a clear 503, never a 500.

The server reaches the real PostgreSQL on this machine through a TCP proxy the test owns;
cutting the proxy drops every connection and refuses new ones, as a database restart or a
network partition would.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from switchyard.accounting.keys import KeyStore
from switchyard.storage.postgres import PostgresDatabase
from tests.e2e.test_accounting import POSTGRES_URL, psql
from tests.servers import RunningServer, free_port, provider_config, start_server
from tests.simulators.openai_sim import SimulatorHandle

GPT = "openai/gpt-4o-mini-2024-07-18"


class TcpProxy:
    """127.0.0.1:<port> forwarded to the database, with a switch to cut it."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.port = free_port()
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.restore()

    def _call(self, fn: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._open.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._open.difference_update((writer, up_writer))

    def cut(self) -> None:
        """Refuse new connections and reset the open ones."""

        async def run() -> None:
            assert self._server is not None
            self._server.close()
            for writer in list(self._open):
                writer.transport.abort()
            self._open.clear()
            self._server = None

        self._call(run)

    def restore(self) -> None:
        async def run() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

        self._call(run)

    def stop(self) -> None:
        if self._server is not None:
            self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def _via(url: str, port: int) -> str:
    return url.replace("127.0.0.1:5432", f"127.0.0.1:{port}")


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"outage_{uuid.uuid4().hex[:10]}"
    psql(f"CREATE SCHEMA {name}")
    yield name
    psql(f"DROP SCHEMA {name} CASCADE")


async def _new_key(url: str) -> str:
    db = PostgresDatabase(url)
    await db.connect()
    try:
        secret, _ = await KeyStore(db).create_key(name="never used before the outage")
    finally:
        await db.close()
    return secret


async def _stored(schema: str, ids: list[str]) -> tuple[set[str], int]:
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        rows = await conn.fetch(f"SELECT id FROM {schema}.generations WHERE id = ANY($1)", ids)
        usage = await conn.fetchval(f"SELECT sum(usage_total) FROM {schema}.api_keys")
    finally:
        await conn.close()
    return {r["id"] for r in rows}, int(usage or 0)


def _chat(server: RunningServer, key: str, stream: bool = False) -> httpx.Response:
    body = {
        "model": GPT,
        "stream": stream,
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "Hello"}],
    }
    return httpx.post(
        f"{server.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_usage_is_buffered_through_a_database_outage(
    fresh_sim: SimulatorHandle, schema: str, tmp_path: Path
) -> None:
    proxy = TcpProxy("127.0.0.1", 5432)
    url = _via(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", proxy.port)
    config = (
        f'database_url = "{url}"\nkey_cache_seconds = 0.5\nusage_flush_interval = 0.1\n\n'
        "[local]\nenabled = false\n\n" + provider_config(fresh_sim.base_url, azure=False)
    )
    server = start_server(tmp_path / "server", config)
    try:
        assert _chat(server, server.api_key).status_code == 200  # the key is now known
        stranger = asyncio.run(_new_key(url))
        served: list[str] = []

        proxy.cut()
        time.sleep(1.0)  # past key_cache_seconds: lookups now reach for the database
        for stream in (False, True, False, True, False):
            response = _chat(server, server.api_key, stream)
            assert response.status_code == 200, response.text
            served.append(response.headers["x-generation-id"])
        # A key this process has never seen cannot be checked: a clear 503, not a 500.
        refused = _chat(server, stranger)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "5"
        error = refused.json()["error"]
        assert error["code"] == 503 and "database" in error["message"]
        assert "5432" not in refused.text and str(proxy.port) not in refused.text
        # Acknowledged usage is visible meanwhile, from the buffer.
        pending = httpx.get(
            f"{server.base_url}/generation",
            params={"id": served[0]},
            headers={"Authorization": f"Bearer {server.api_key}"},
        )
        assert pending.status_code == 200
        time.sleep(2.0)  # the writer keeps failing, and backs off
        stored, _ = asyncio.run(_stored(schema, served))
        assert stored == set()

        proxy.restore()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            stored, usage = asyncio.run(_stored(schema, served))
            if stored == set(served):
                break
            time.sleep(0.2)
        assert stored == set(served), "every acknowledged generation reaches the database"
        assert usage > 0
        # The pool reconnected: new work and the stranger's key go through again.
        assert _chat(server, stranger).status_code == 200
        log = server.log()
        assert log.count("writing usage to the database failed") == 1
        assert "usage writes resumed" in log
        assert "Traceback" not in log
    finally:
        server.stop()
        proxy.stop()
