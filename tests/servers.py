"""Start a real Switchyard server process for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from switchyard.accounting.keys import KeyStore
from switchyard.catalog import load_catalog
from switchyard.settings import load_settings
from switchyard.storage import open_database

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    api_key: str
    management_key: str
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def provider_config(sim_base_url: str, *, openai: bool = True, azure: bool = True) -> str:
    parts = []
    if openai:
        parts.append(
            f'[providers.openai]\napi_key = "sk-sim-test"\nbase_url = "{sim_base_url}/v1"\n'
        )
    if azure:
        parts.append(
            f'[providers.azure]\napi_key = "sk-sim-test"\nbase_url = "{sim_base_url}"\n'
            'api_version = "2024-10-21"\n'
        )
    return "\n".join(parts)


def _provider_env_vars() -> frozenset[str]:
    """Every environment variable a built-in provider reads its credentials or address from."""
    names = set()
    for spec in load_catalog().providers.values():
        names.update(n for n in (spec.api_key_env, spec.base_url_env, spec.api_version_env) if n)
    return frozenset(names)


async def _create_keys(data_dir: Path) -> tuple[str, str]:
    """Keys in whichever database the data dir's config names (SQLite unless it says)."""
    settings = load_settings(str(data_dir / "switchyard.toml"), {"data_dir": str(data_dir)})
    db = open_database(settings.database_url, settings.data_path)
    await db.connect()
    try:
        store = KeyStore(db)
        await store.ensure_account()
        api_key, _ = await store.create_key(name="tests")
        management_key, _ = await store.create_key(name="tests-admin", kind="management")
    finally:
        await db.close()
    return api_key, management_key


def start_server(
    data_dir: Path,
    config: str = "",
    env: dict[str, str] | None = None,
    keep_keys: RunningServer | None = None,
    args: list[str] | None = None,
) -> RunningServer:
    """Start a server on ``data_dir``; ``keep_keys`` restarts one, reusing its keys;
    ``args``: more ``switchyard serve`` options."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "switchyard.toml").write_text(config, "utf-8")
    if keep_keys is not None:
        api_key, management_key = keep_keys.api_key, keep_keys.management_key
    else:
        api_key, management_key = asyncio.run(_create_keys(data_dir))

    port = free_port()
    log_path = data_dir / f"server-{port}.log"
    # A developer's own provider settings (OLLAMA_HOST, GROQ_API_KEY ...) would enable
    # providers the test did not configure.
    provider_env = _provider_env_vars()
    clean_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "AZURE_OPENAI_", "ANTHROPIC_", "SWITCHYARD_"))
        and k not in provider_env
    }
    clean_env.update(env or {})
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "switchyard",
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            *(args or []),
        ],
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env=clean_env,
    )
    server = RunningServer(process, port, data_dir, api_key, management_key, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not start:\n{server.log()}")
