"""``GET /api/v1/openapi.json``: the OpenAPI document of the operations this server offers.

The document is a checked-in data file (built by ``scripts/build_openapi.py`` from
OpenRouter's own document), served as stored: read once, never re-encoded.
"""

from __future__ import annotations

import functools
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

from switchyard.server.responses import JSONBytes


@functools.cache
def openapi_document() -> bytes:
    return resources.files("switchyard.server").joinpath("openapi.json").read_bytes()


async def get_openapi(request: Request) -> Response:
    return JSONBytes(openapi_document(), headers={"Cache-Control": "public, max-age=3600"})
