"""Our OpenAPI document is valid OpenAPI 3.1 and describes exactly the routes we serve."""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from starlette.routing import Route

from switchyard.catalog import load_catalog
from switchyard.server.app import API, ROUTES
from switchyard.server.openapi_api import openapi_document


def _document() -> dict[str, object]:
    loaded = json.loads(openapi_document())
    assert isinstance(loaded, dict)
    return loaded


def test_document_is_valid_openapi_31() -> None:
    schema = schemathesis.openapi.from_dict(_document())
    # Raises on any violation of the OpenAPI 3.1 meta-schema.
    schema.validate()
    broken = [r for r in schema.get_all_operations() if not r.ok()]
    assert broken == []


def _served() -> set[tuple[str, str]]:
    pairs = set()
    for route in ROUTES:
        if not isinstance(route, Route) or not route.path.startswith(API):  # pages, static
            continue
        for method in route.methods or ():
            if method != "HEAD":
                pairs.add((route.path.removeprefix(API), method.lower()))
    return pairs


def _documented() -> set[tuple[str, str]]:
    paths = _document()["paths"]
    assert isinstance(paths, dict)
    methods = {"get", "post", "put", "patch", "delete"}
    return {(path, m) for path, item in paths.items() for m in item if m in methods}


def test_every_route_is_documented_and_nothing_else() -> None:
    assert _served() == _documented()


def test_operations_reference_only_included_components() -> None:
    document = _document()
    text = json.dumps(document)
    components = document["components"]
    assert isinstance(components, dict)
    schemas = components["schemas"]
    for ref in set(_refs(text)):
        assert ref in schemas, ref


def _refs(text: str) -> list[str]:
    marker = '"$ref": "#/components/schemas/'
    out = []
    start = text.find(marker)
    while start != -1:
        end = text.index('"', start + len(marker))
        out.append(text[start + len(marker) : end])
        start = text.find(marker, end)
    return out


def test_catalog_values_fit_the_documented_enums() -> None:
    """What /providers and /models render from the catalog is allowed by the document."""
    document: Any = _document()
    provider = document["paths"]["/providers"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]["properties"]["data"]["items"]["properties"]
    countries = set(provider["datacenters"]["items"]["enum"])
    parameters = set(document["components"]["schemas"]["Parameter"]["enum"])
    catalog = load_catalog()
    for model in catalog.models.values():
        assert set(model.supported_parameters) <= parameters, model.id
    for spec in catalog.providers.values():
        assert set(spec.datacenters) <= countries, spec.slug
