"""POST /api/v1/responses: the OpenAI Responses API over the chat service.

The request is translated to a chat request and served exactly as chat completions are
(same planning, metering and accounting); only the shapes the client sees differ. Nothing
is stored: every request carries its whole conversation.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response

from switchyard.completions import StreamSession
from switchyard.errors import InvalidRequest
from switchyard.server.handlers import call_context
from switchyard.server.responses import JSONBytes, SSEResponse, read_body
from switchyard.server.state import state_of
from switchyard.sse import DONE_FRAME, KEEPALIVE_FRAME
from switchyard.surfaces.responses import from_result
from switchyard.surfaces.responses_request import to_chat
from switchyard.surfaces.responses_stream import ResponseStream, event_type
from switchyard.wire.codec import decode_request, encode
from switchyard.wire.responses import ResponseEvent, ResponsesRequest


async def create_response(request: Request) -> Response:
    state = state_of(request)
    key = await state.keys.inference_key(request.headers.get("authorization"))
    body = await read_body(request, state.settings.max_body_bytes)
    translation = to_chat(decode_request(body, ResponsesRequest))
    chat = translation.chat
    ctx = call_context(request, key, chat)
    created_at = int(time.time())
    try:
        prepared = await state.chat.prepare(chat, len(body), ctx.session_id)
    except InvalidRequest as exc:
        raise translation.rename(exc) from None
    headers = {"X-Generation-Id": ctx.generation_id}
    if not chat.stream:
        result = await state.chat.complete(chat, prepared, ctx)
        answer = from_result(result, translation, ctx.generation_id, created_at)
        return JSONBytes(encode(answer), headers=headers)
    session = await state.chat.open_stream(chat, prepared, ctx)
    stream = ResponseStream(translation, ctx.generation_id, session.served.model.id, created_at)
    frames = _frames(session, stream)
    return SSEResponse(frames, headers, on_disconnect=session.cancel)  # type: ignore[return-value]


def _frame(event: ResponseEvent) -> bytes:
    # OpenAI names each event in an `event:` line as well as in the data's `type`.
    return b"event: " + event_type(event).encode() + b"\ndata: " + encode(event) + b"\n\n"


async def _frames(session: StreamSession, stream: ResponseStream) -> AsyncIterator[bytes]:
    for event in stream.start():
        yield _frame(event)
    # aclosing: if the client goes, the session's cleanup runs now, not at GC.
    async with contextlib.aclosing(session.events()) as chunks:
        async for chunk in chunks:
            if chunk is None:
                yield KEEPALIVE_FRAME
                continue
            for event in stream.feed(chunk):
                yield _frame(event)
    yield DONE_FRAME  # OpenRouter ends its Responses streams with the [DONE] sentinel
