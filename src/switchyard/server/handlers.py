"""Route handlers: authenticate, decode, call a service, respond. Nothing else."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from switchyard.accounting.keys import KeyRecord
from switchyard.completions import new_generation_id
from switchyard.errors import Forbidden, NotFound
from switchyard.server.responses import JSONBytes, SSEResponse, read_body
from switchyard.server.state import AppState
from switchyard.wire.chat import ChatRequest
from switchyard.wire.codec import decode_request, encode
from switchyard.wire.models import EndpointsEnvelope, ModelEnvelope, ModelsPage, ProvidersEnvelope


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.switchyard
    return state


async def _inference_key(request: Request, state: AppState) -> KeyRecord:
    key = await state.keys.authenticate(request.headers.get("authorization"))
    if key.kind != "inference":
        raise Forbidden("Management keys cannot call inference endpoints; use an inference key")
    return key


async def chat_completions(request: Request) -> Response:
    state = _state(request)
    await _inference_key(request, state)
    body = await read_body(request, state.settings.max_body_bytes)
    chat = decode_request(body, ChatRequest)
    service = state.chat
    plan = await service.prepare(chat, len(body))
    generation_id = new_generation_id()
    headers = {"X-Generation-Id": generation_id}
    if not chat.stream:
        result, _ = await service.complete(chat, plan, generation_id)
        return JSONBytes(encode(result), headers=headers)
    session = await service.open_stream(chat, plan, generation_id)
    return SSEResponse(session.frames(), headers, on_disconnect=session.cancel)  # type: ignore[return-value]


async def list_models(request: Request) -> Response:
    view = _state(request).view
    models = view.list_models(request.query_params)
    return JSONBytes(encode(ModelsPage(data=models, total_count=len(models), links={"next": None})))


def _model_id(request: Request) -> str:
    return f"{request.path_params['author']}/{request.path_params['slug']}"


async def get_model(request: Request) -> Response:
    view = _state(request).view
    model_id = _model_id(request)
    model = view.models.get(model_id)
    if model is None:
        raise NotFound(f"Model {model_id} not found")
    return JSONBytes(encode(ModelEnvelope(data=model)))


async def model_endpoints(request: Request) -> Response:
    view = _state(request).view
    model_id = _model_id(request)
    data = view.endpoints_data(model_id)
    if data is None:
        raise NotFound(f"Model {model_id} not found")
    return JSONBytes(encode(EndpointsEnvelope(data=data)))


async def list_providers(request: Request) -> Response:
    return JSONBytes(encode(ProvidersEnvelope(data=_state(request).view.providers_out())))


async def health(request: Request) -> Response:
    providers = {slug: p.stats() for slug, p in _state(request).providers.items() if p.stats()}
    return JSONBytes(encode({"status": "ok", "providers": providers}))
