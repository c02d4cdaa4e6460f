"""`switchyard providers set-key` stores an encrypted provider key; the server uses it.

The OpenAI simulator accepts only its own key, so a successful completion through a server
whose config names no key proves the stored key was opened and sent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from switchyard.storage.credentials import MASTER_KEY_ENV, new_master_key
from tests.servers import ROOT, start_server
from tests.simulators.openai_sim import DEFAULT_API_KEY, SimulatorHandle

MODEL = "openai/gpt-4o-mini-2024-07-18"


def _config(sim: SimulatorHandle) -> str:
    # No api_key: the key must come from the database.
    return (
        "[local]\nenabled = false\n\n[providers.local-embeddings]\nenabled = false\n\n"
        f'[providers.openai]\nbase_url = "{sim.base_url}/v1"\n'
    )


def set_key(data_dir: Path, secret: str, master: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHYARD_", "OPENAI_"))}
    if master is not None:
        env[MASTER_KEY_ENV] = master
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "switchyard",
            "providers",
            "set-key",
            "openai",
            "--data-dir",
            str(data_dir),
        ],
        input=secret + "\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


def test_stored_key_is_encrypted_and_used(sim: SimulatorHandle, tmp_path: Path) -> None:
    data_dir = tmp_path / "creds"
    data_dir.mkdir()
    (data_dir / "switchyard.toml").write_text(_config(sim), "utf-8")
    master = new_master_key()

    refused = set_key(data_dir, DEFAULT_API_KEY, None)
    assert refused.returncode == 2
    assert MASTER_KEY_ENV in refused.stderr

    stored = set_key(data_dir, DEFAULT_API_KEY, master)
    assert stored.returncode == 0, stored.stderr
    assert DEFAULT_API_KEY not in stored.stdout + stored.stderr
    database = (data_dir / "switchyard.db").read_bytes()
    assert DEFAULT_API_KEY.encode() not in database

    server = start_server(data_dir, _config(sim), env={MASTER_KEY_ENV: master})
    try:
        response = httpx.post(
            f"{server.base_url}/chat/completions",
            json={"model": MODEL, "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {server.api_key}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert DEFAULT_API_KEY not in server.log()
    finally:
        server.stop()

    with pytest.raises(RuntimeError, match="does not open the stored key for provider 'openai'"):
        start_server(
            data_dir, _config(sim), env={MASTER_KEY_ENV: new_master_key()}, keep_keys=server
        )

    without = start_server(data_dir, _config(sim), keep_keys=server)
    try:
        assert f"{MASTER_KEY_ENV} is not set" in without.log()
        models = httpx.get(f"{without.base_url}/models", timeout=10).json()["data"]
        assert MODEL not in {m["id"] for m in models}  # no key: the provider is left out
    finally:
        without.stop()
