"""Load and cross-check the catalog data files; any mistake stops start-up with its location."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import yaml

from switchyard.catalog.schema import Catalog, Endpoint, ModelSpec, ProviderSpec


class CatalogError(Exception):
    """The catalog data is invalid; the message says which file and entry."""


class _Extra(msgspec.Struct, forbid_unknown_fields=True):
    """A user catalog file: any of the three sections, merged over the built-in data."""

    models: list[ModelSpec] = []
    providers: list[ProviderSpec] = []
    endpoints: list[Endpoint] = []


def _read_yaml(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{where}: not valid YAML: {exc}") from None


def _convert(data: Any, kind: Any, where: str) -> Any:
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        raise CatalogError(f"{where}: {exc}") from None


def _builtin(name: str) -> str:
    return resources.files("switchyard.catalog").joinpath("data", name).read_text("utf-8")


def load_catalog(extra_files: Iterable[Path] = (), extra: dict[str, Any] | None = None) -> Catalog:
    """Built-in data, then each extra file, then ``extra`` (the config file's entries)."""
    models = {
        m.id: m
        for m in _convert(
            _read_yaml(_builtin("models.yaml"), "models.yaml"), list[ModelSpec], "models.yaml"
        )
    }
    providers = {
        p.slug: p
        for p in _convert(
            _read_yaml(_builtin("providers.yaml"), "providers.yaml"),
            list[ProviderSpec],
            "providers.yaml",
        )
    }
    endpoints: dict[str, Endpoint] = {}
    for e in _convert(
        _read_yaml(_builtin("endpoints.yaml"), "endpoints.yaml"), list[Endpoint], "endpoints.yaml"
    ):
        if e.key in endpoints:
            raise CatalogError(f"endpoints.yaml: duplicate endpoint {e.key}")
        endpoints[e.key] = e

    layers: list[tuple[str, Any]] = []
    for path in extra_files:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise CatalogError(f"{path}: cannot read catalog file: {exc}") from None
        layers.append((str(path), _read_yaml(text, str(path)) or {}))
    if extra:
        layers.append(("config file", extra))
    for where, data in layers:
        layer = _convert(data, _Extra, where)
        models.update((m.id, m) for m in layer.models)
        providers.update((p.slug, p) for p in layer.providers)
        endpoints.update((e.key, e) for e in layer.endpoints)

    by_model: dict[str, list[Endpoint]] = {}
    for e in endpoints.values():
        if e.model not in models:
            raise CatalogError(f"endpoint {e.key}: unknown model {e.model!r}")
        if e.provider not in providers:
            raise CatalogError(f"endpoint {e.key}: unknown provider {e.provider!r}")
        by_model.setdefault(e.model, []).append(e)
    return Catalog(models=models, providers=providers, endpoints=by_model)
