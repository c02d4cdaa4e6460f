"""POST /api/v1/messages: the Anthropic Messages surface over the shared chat service.

Authentication, routing, execution and accounting are the chat completion path's own; this
handler only translates (see :mod:`switchyard.surfaces.messages_request`,
:mod:`switchyard.surfaces.messages` and :mod:`switchyard.surfaces.messages_stream`). Its
errors take the Anthropic shape that OpenRouter's spec gives this route, so they are rendered
here rather than by the app-wide handler that speaks the OpenRouter shape.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response

from switchyard.completions import StreamSession
from switchyard.errors import SwitchyardError, Unauthorized
from switchyard.server.handlers import call_context
from switchyard.server.responses import JSONBytes, SSEResponse, read_body
from switchyard.server.state import state_of
from switchyard.surfaces.messages import error_body, to_messages_result
from switchyard.surfaces.messages_request import to_chat_request
from switchyard.surfaces.messages_stream import MessagesStream, event_frame
from switchyard.wire.codec import decode_request, encode
from switchyard.wire.messages import MessagesRequest

log = logging.getLogger("switchyard.server.messages")


async def create_message(request: Request) -> Response:
    request_id: str | None = None
    try:
        state = state_of(request)
        headers = request.headers
        authorization, api_key = headers.get("authorization"), headers.get("x-api-key")
        if not authorization and not api_key:
            raise Unauthorized(
                "Missing API key; send it as 'x-api-key: <key>' or 'Authorization: Bearer <key>'"
            )
        key = await state.keys.inference_key(authorization, api_key)
        body = await read_body(request, state.settings.max_body_bytes)
        anthropic = decode_request(body, MessagesRequest)
        chat = to_chat_request(anthropic)
        ctx = call_context(request, key, chat)
        request_id = ctx.generation_id
        prepared = await state.chat.prepare(chat, len(body), ctx.session_id)
        reply_headers = {"X-Generation-Id": ctx.generation_id, "request-id": ctx.generation_id}
        stops = anthropic.stop_sequences if isinstance(anthropic.stop_sequences, list) else []
        if not chat.stream:
            result = await state.chat.complete(chat, prepared, ctx)
            return JSONBytes(encode(to_messages_result(result, stops)), headers=reply_headers)
        session = await state.chat.open_stream(chat, prepared, ctx)
    except SwitchyardError as exc:
        return JSONBytes(error_body(exc, request_id), status_code=exc.status, headers=exc.headers)
    except Exception:
        # The traceback goes to the log; the client gets no internals.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        failure = SwitchyardError("Internal Server Error", status=500)
        return JSONBytes(error_body(failure, request_id), status_code=500)
    stream = MessagesStream(
        session.generation_id,
        session.served.model.id,
        session.provider_name,
        prepared.prompt_tokens.get(session.served.model.id, 0),
        stops,
    )
    frames = _frames(session, stream)
    return SSEResponse(frames, reply_headers, on_disconnect=session.cancel)  # type: ignore[return-value]


async def _frames(session: StreamSession, stream: MessagesStream) -> AsyncIterator[bytes]:
    for event in stream.start():
        yield event_frame(event)
    # aclosing: if the client goes, the session's cleanup runs now, not at GC.
    async with contextlib.aclosing(session.events()) as events:
        async for chunk in events:
            for event in stream.feed(chunk):
                yield event_frame(event)
