"""Load and cross-check the catalog data files; any mistake stops start-up with its location."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import yaml

from switchyard.catalog.schema import Catalog, Endpoint, ModelSpec, ProviderSpec

_T = TypeVar("_T")


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


def _builtin_files() -> list[tuple[str, str]]:
    """Every built-in data file, in name order: one file per model family or serving stack."""
    folder = resources.files("switchyard.catalog").joinpath("data")
    return sorted(
        (entry.name, entry.read_text("utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    )


def _add_once(
    found: dict[str, _T], entries: Iterable[tuple[str, _T]], where: str, kind: str
) -> None:
    for key, entry in entries:
        if key in found:
            raise CatalogError(f"{where}: {kind} {key} is defined twice")
        found[key] = entry


def load_catalog(extra_files: Iterable[Path] = (), extra: dict[str, Any] | None = None) -> Catalog:
    """Built-in data, then each extra file, then ``extra`` (the config file's entries).

    Built-in files may not define the same model, provider or endpoint twice; the extra
    layers exist to override, so there a later entry replaces an earlier one.
    """
    models: dict[str, ModelSpec] = {}
    providers: dict[str, ProviderSpec] = {}
    endpoints: dict[str, Endpoint] = {}
    for name, text in _builtin_files():
        layer = _convert(_read_yaml(text, name) or {}, _Extra, name)
        _add_once(models, ((m.id, m) for m in layer.models), name, "model")
        _add_once(providers, ((p.slug, p) for p in layer.providers), name, "provider")
        _add_once(endpoints, ((e.key, e) for e in layer.endpoints), name, "endpoint")

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
