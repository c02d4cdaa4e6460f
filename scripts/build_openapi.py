"""Cut Switchyard's OpenAPI document out of OpenRouter's: the operations we implement.

Run after adding a route: ``python scripts/build_openapi.py``. It reads OpenRouter's
document (path given, or /work/shared/spec/openrouter-openapi.yaml), keeps the paths in
``OPERATIONS`` with every component they reference, adds our own operations, and writes
``src/switchyard/server/openapi.json``. The test suite validates the result and checks it
against the route table, so a stale document fails the build.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
SOURCE = Path("/work/shared/spec/openrouter-openapi.yaml")
TARGET = ROOT / "src" / "switchyard" / "server" / "openapi.json"

# OpenRouter path -> the methods of it we implement.
OPERATIONS: dict[str, list[str]] = {
    "/chat/completions": ["post"],
    "/embeddings": ["post"],
    "/embeddings/models": ["get"],
    "/responses": ["post"],
    "/messages": ["post"],
    "/models": ["get"],
    "/models/count": ["get"],
    "/models/user": ["get"],
    "/model/{author}/{slug}": ["get"],
    "/models/{author}/{slug}/endpoints": ["get"],
    "/providers": ["get"],
    "/key": ["get"],
    "/keys": ["get", "post"],
    "/keys/{hash}": ["get", "patch", "delete"],
    "/credits": ["get"],
    "/generation": ["get"],
    "/activity": ["get"],
}

# Operations of ours that OpenRouter's document does not have.
ADDITIONS: dict[str, Any] = {
    "/openapi.json": {
        "get": {
            "operationId": "getOpenApiDocument",
            "summary": "This document",
            "tags": ["Switchyard"],
            "security": [],
            "responses": {
                "200": {
                    "description": "The OpenAPI document of this server",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    },
}


def _legacy_completions(source: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """POST /completions, which OpenRouter's document lacks: schemas from our own wire types
    (prefixed "Legacy" so they cannot shadow OpenRouter's components), responses and
    errors as the chat operation declares them."""
    import msgspec

    from switchyard.wire.completions import CompletionRequest, CompletionResult

    (request, result), schemas = msgspec.json.schema_components(
        [CompletionRequest, CompletionResult], ref_template="#/components/schemas/Legacy{name}"
    )
    _decimals_as_numbers(schemas)
    chat = source["paths"]["/chat/completions"]["post"]
    responses = {code: value for code, value in chat["responses"].items() if code != "200"}
    responses["200"] = {
        "description": "A text completion (or, with stream, server-sent events of chunks)",
        "content": {
            "application/json": {"schema": result},
            "text/event-stream": {"schema": {"type": "string"}},
        },
    }
    operation = {
        "post": {
            "operationId": "createLegacyCompletion",
            "summary": "Legacy text completion",
            "description": (
                "OpenAI's legacy Completions API. The prompt becomes one user message and "
                "is routed and billed like a chat completion; base models get it verbatim."
            ),
            "tags": ["Completions"],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": request}},
            },
            "responses": responses,
        }
    }
    return operation, {f"Legacy{name}": schema for name, schema in schemas.items()}


def _decimals_as_numbers(node: Any) -> None:
    """Money is Decimal in our types and a JSON number on the wire (wire.codec)."""
    if isinstance(node, dict):
        if node.get("type") == "string" and node.get("format") == "decimal":
            node.clear()
            node["type"] = "number"
        for value in node.values():
            _decimals_as_numbers(value)
    elif isinstance(node, list):
        for value in node:
            _decimals_as_numbers(value)


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            found.add(ref)
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _catalog_parameters() -> list[str]:
    """Every parameter name our catalog says a model or endpoint supports."""
    from switchyard.catalog import load_catalog

    catalog = load_catalog()
    names: set[str] = set()
    for model in catalog.models.values():
        names.update(model.supported_parameters)
    for endpoints in catalog.endpoints.values():
        for endpoint in endpoints:
            names.update(endpoint.supported_parameters or ())
    return sorted(names)


def _our_changes(paths: dict[str, Any], components: dict[str, dict[str, Any]]) -> None:
    """Where we knowingly say more than OpenRouter's document allows."""
    # Any operation that takes input can refuse it: 400 with the error naming the field
    # (OpenRouter documents that for most operations, not for all of them).
    bad_request = paths["/activity"]["get"]["responses"]["400"]
    for item in paths.values():
        for method, operation in item.items():
            if method in ("get", "post", "patch", "put", "delete") and (
                operation.get("parameters") or operation.get("requestBody")
            ):
                operation["responses"].setdefault("400", bad_request)
    # Embedding models list their own parameters (dimensions, encoding_format, ...).
    parameter = components["schemas"].get("Parameter")
    if parameter is not None:
        known = list(parameter["enum"])
        parameter["enum"] = known + [p for p in _catalog_parameters() if p not in known]


def build(source: dict[str, Any]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, methods in OPERATIONS.items():
        item = source["paths"][path]
        kept = {m: item[m] for m in methods}
        kept.update({k: v for k, v in item.items() if k == "parameters"})
        paths[path] = kept
    paths.update(ADDITIONS)
    completions, legacy_schemas = _legacy_completions(source)
    paths["/completions"] = completions

    components: dict[str, dict[str, Any]] = {}
    pending: set[str] = set()
    _refs(paths, pending)
    done: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in done:
            continue
        done.add(ref)
        _, _, section, name = ref.split("/", 3)
        if section == "schemas" and name in legacy_schemas:
            continue  # ours, added below
        value = source["components"][section][name]
        components.setdefault(section, {})[name] = value
        _refs(value, pending)
    components["securitySchemes"] = source["components"]["securitySchemes"]
    components.setdefault("schemas", {}).update(legacy_schemas)
    _our_changes(paths, components)

    return {
        "openapi": source["openapi"],
        "info": {
            "title": "Switchyard API",
            "version": "1.0.0",
            "description": (
                "The subset of the OpenRouter API that Switchyard implements, cut from "
                "OpenRouter's OpenAPI document, plus Switchyard's own operations."
            ),
            "license": source["info"]["license"],
        },
        "servers": [{"url": "/api/v1", "description": "This server"}],
        "security": source.get("security", [{"apiKey": []}]),
        "paths": {p: paths[p] for p in sorted(paths)},
        "components": {s: dict(sorted(v.items())) for s, v in sorted(components.items())},
    }


def main() -> None:
    source_path = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE
    source = yaml.safe_load(source_path.read_text("utf-8"))
    document = build(source)
    TARGET.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n", "utf-8")
    print(f"wrote {TARGET} ({len(document['paths'])} paths)")


if __name__ == "__main__":
    main()
