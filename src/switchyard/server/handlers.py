"""Route handlers: authenticate, decode, call a service, respond. Nothing else."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from switchyard.accounting.keys import KeyRecord
from switchyard.accounting.meter import CallContext
from switchyard.completions import new_generation_id
from switchyard.server.responses import JSONBytes, SSEResponse, read_body
from switchyard.server.state import state_of
from switchyard.wire.chat import ChatRequest
from switchyard.wire.codec import decode_request, encode


async def chat_completions(request: Request) -> Response:
    state = state_of(request)
    key = await state.keys.inference_key(request.headers.get("authorization"))
    body = await read_body(request, state.settings.max_body_bytes)
    chat = decode_request(body, ChatRequest)
    ctx = call_context(request, key, chat)
    prepared = await state.chat.prepare(chat, len(body), ctx.session_id)
    headers = {"X-Generation-Id": ctx.generation_id}
    if not chat.stream:
        result = await state.chat.complete(chat, prepared, ctx)
        return JSONBytes(encode(result), headers=headers)
    session = await state.chat.open_stream(chat, prepared, ctx)
    return SSEResponse(session.frames(), headers, on_disconnect=session.cancel)  # type: ignore[return-value]


def call_context(request: Request, key: KeyRecord, chat: ChatRequest) -> CallContext:
    """Who asks and the request facts its generation record keeps; shared by every surface."""
    headers = request.headers
    session = chat.session_id if isinstance(chat.session_id, str) else None
    return CallContext(
        key=key,
        generation_id=new_generation_id(),
        streamed=chat.stream,
        http_referer=headers.get("http-referer") or None,
        app_title=headers.get("x-openrouter-title") or headers.get("x-title") or None,
        user_id=chat.user if isinstance(chat.user, str) else None,
        # The body's session_id wins over the header, as OpenRouter documents.
        session_id=session or headers.get("x-session-id") or None,
        want_metadata=_metadata_enabled(
            headers.get("x-openrouter-metadata")
            or headers.get("x-openrouter-experimental-metadata")
        ),
        request_model=chat.model if isinstance(chat.model, str) else None,
    )


def _metadata_enabled(value: str | None) -> bool:
    return value is not None and value.strip().lower() == "enabled"


async def health(request: Request) -> Response:
    state = state_of(request)
    stats = {slug: p.stats() for slug, p in state.providers.items()}
    providers = {slug: counters for slug, counters in stats.items() if counters}
    embedders = {slug: e.stats() for slug, e in state.embedders.items() if e.stats()}
    body: dict[str, object] = {"status": "ok", "providers": providers}
    if embedders:
        body["embedders"] = embedders
    return JSONBytes(encode(body))
