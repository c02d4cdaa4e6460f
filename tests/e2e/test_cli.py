"""The switchyard command: keys and catalog listing, and secrets kept out of logs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.servers import RunningServer


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_"))}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "switchyard", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean,
        check=False,
    )


def test_keys_create_prints_a_working_key(server: RunningServer) -> None:
    created = run("keys", "create", "--name", "cli-test", "--data-dir", str(server.data_dir))
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("sk-sy-v1-") and len(secret) == len("sk-sy-v1-") + 64
    response = httpx.get(f"{server.base_url}/models", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
    listing = run("keys", "list", "--data-dir", str(server.data_dir))
    assert "cli-test" in listing.stdout and secret not in listing.stdout


def test_models_lists_the_catalog_and_availability(tmp_path: Path) -> None:
    bare = run("models", "--data-dir", str(tmp_path))
    assert bare.returncode == 0, bare.stderr
    lines = {line.split()[0]: line for line in bare.stdout.splitlines()}
    assert "local" in lines["local/smollm2-135m-instruct"]
    assert "unavailable" in lines["openai/gpt-4o"]
    assert "local-embeddings" in lines["intfloat/multilingual-e5-small"]
    assert "unavailable" in lines["openai/text-embedding-3-small"]
    with_key = run("models", "--data-dir", str(tmp_path), env={"OPENAI_API_KEY": "sk-test"})
    lines = {line.split()[0]: line for line in with_key.stdout.splitlines()}
    assert "openai" in lines["openai/gpt-4o"] and "unavailable" not in lines["openai/gpt-4o"]
    assert "unavailable" not in lines["openai/text-embedding-3-small"]


def test_bad_config_is_refused_before_serving(tmp_path: Path) -> None:
    (tmp_path / "switchyard.toml").write_text("port = 'eighty'\n")
    result = run("serve", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "port" in result.stderr


def test_secrets_never_reach_the_log(server: RunningServer) -> None:
    # Provoke provider errors and auth failures, then read everything the server logged.
    httpx.post(
        f"{server.base_url}/chat/completions",
        json={},
        headers={"Authorization": "Bearer sk-sy-v1-wrongwrongwrong"},
    )
    log = server.log()
    assert "sk-sim-test" not in log
    assert server.api_key not in log and server.management_key not in log
    assert "sk-sy-v1-wrong" not in log
