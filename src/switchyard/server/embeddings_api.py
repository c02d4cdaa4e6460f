"""Embeddings routes: ``POST /embeddings`` and ``GET /embeddings/models``. Thin, as handlers are."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from switchyard.accounting.meter import CallContext
from switchyard.completions import new_generation_id
from switchyard.server.responses import JSONBytes, read_body
from switchyard.server.state import state_of
from switchyard.wire.codec import decode_request, encode
from switchyard.wire.embeddings import EmbeddingsRequest
from switchyard.wire.models import ModelsPage


async def create_embeddings(request: Request) -> Response:
    state = state_of(request)
    key = await state.keys.inference_key(request.headers.get("authorization"))
    body = await read_body(request, state.settings.max_body_bytes)
    embeddings = decode_request(body, EmbeddingsRequest)
    headers = request.headers
    ctx = CallContext(
        key=key,
        generation_id=new_generation_id(),
        streamed=False,
        http_referer=headers.get("http-referer") or None,
        app_title=headers.get("x-openrouter-title") or headers.get("x-title") or None,
        user_id=embeddings.user if isinstance(embeddings.user, str) else None,
        session_id=headers.get("x-session-id") or None,
        operation="embeddings",
        request_model=embeddings.model,
    )
    prepared = state.embeddings.prepare(embeddings, len(body))
    result = await state.embeddings.embed(embeddings, prepared, ctx)
    return JSONBytes(encode(result), headers={"X-Generation-Id": ctx.generation_id})


async def list_embeddings_models(request: Request) -> Response:
    query = {**request.query_params, "output_modalities": "embeddings"}
    models = state_of(request).view.list_models(query)
    return JSONBytes(encode(ModelsPage(data=models, total_count=len(models), links={"next": None})))
