"""Schemathesis fuzzes the running server from our own OpenAPI document.

Every operation in ``src/switchyard/server/openapi.json`` gets generated requests (valid and
invalid by the schema) against a real server process whose only upstream is the OpenAI
simulator (the local model and local embedder are switched off, so nothing slow runs).
Checks: no 500 (502/503 only as our error body, e.g. a model whose provider this server
does not configure), and status codes, content types and bodies conform to the document.
Every call has a timeout, so a hang fails the test instead of stalling it.

Derandomized with a bounded number of examples per operation: the same requests every run,
well within the time budget of a CI job on two cores.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from switchyard.server.openapi_api import openapi_document
from tests.servers import RunningServer, provider_config, start_server
from tests.simulators.openai_sim import SimulatorHandle

CALL_TIMEOUT = 10.0


@schemathesis.check
def no_internal_error(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """No 500, ever. 502/503 are honest answers here (the catalog holds many models whose
    providers this server has no credentials for: "no provider configured" is a 503), as
    long as they come in our error shape; the schema checks below hold them to it."""
    if response.status_code >= 500 and response.status_code not in (502, 503):
        raise AssertionError(f"server error {response.status_code}: {response.text[:500]}")
    return None


CHECKS = [
    no_internal_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzz_server(
    sim: SimulatorHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    config = (
        "[local]\nenabled = false\n\n"
        "[providers.local-embeddings]\nenabled = false\n\n" + provider_config(sim.base_url)
    )
    running = start_server(tmp_path_factory.mktemp("fuzz"), config)
    yield running
    running.stop()


# Only the fuzzing phase: the coverage phase enumerates boundary values of every property,
# thousands of requests for OpenRouter's chat schema, far beyond this test's time budget.
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 8,
        "phases": {"examples": {"enabled": False}, "coverage": {"enabled": False}},
        "generation": {"mode": "all", "max-examples": 20, "deterministic": True},
    }
)
# The document is a data file in the package: no server is needed to load it.
schema = schemathesis.openapi.from_dict(json.loads(openapi_document()), config=CONFIG)


@schema.parametrize()
@settings(
    max_examples=20,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_fuzz(case: schemathesis.Case, fuzz_server: RunningServer) -> None:
    key = fuzz_server.management_key if case.path.startswith("/keys") else fuzz_server.api_key
    response = case.call(
        base_url=fuzz_server.base_url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=CALL_TIMEOUT,
    )
    case.validate_response(response, checks=CHECKS)
