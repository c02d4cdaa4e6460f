"""``POST /completions``: the legacy Completions API, served by the chat service."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from switchyard.server.handlers import call_context
from switchyard.server.responses import JSONBytes, SSEResponse, read_body
from switchyard.server.state import state_of
from switchyard.surfaces.completions import (
    completion_frames,
    echo_prefix,
    to_chat,
    to_completion,
)
from switchyard.wire.codec import decode_request, encode
from switchyard.wire.completions import CompletionRequest


async def completions(request: Request) -> Response:
    state = state_of(request)
    key = await state.keys.inference_key(request.headers.get("authorization"))
    body = await read_body(request, state.settings.max_body_bytes)
    legacy = decode_request(body, CompletionRequest)
    chat = to_chat(legacy)
    echo = echo_prefix(legacy)
    ctx = call_context(request, key, chat)
    prepared = await state.chat.prepare(chat, len(body), ctx.session_id)
    headers = {"X-Generation-Id": ctx.generation_id}
    if not chat.stream:
        result = await state.chat.complete(chat, prepared, ctx)
        return JSONBytes(encode(to_completion(result, echo)), headers=headers)
    session = await state.chat.open_stream(chat, prepared, ctx)
    frames = completion_frames(session, echo)
    return SSEResponse(frames, headers, on_disconnect=session.cancel)  # type: ignore[return-value]
