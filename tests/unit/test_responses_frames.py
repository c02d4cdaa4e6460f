"""The SSE framing of the Responses handler, read back with the openai SDK's SSE decoder."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any, cast

from openai._streaming import SSEDecoder

from switchyard.completions import StreamSession
from switchyard.server.responses_api import _frames
from switchyard.surfaces.responses_request import to_chat
from switchyard.surfaces.responses_stream import ResponseStream
from switchyard.wire.chat import ChatChunk, Delta, StreamChoice, Usage
from switchyard.wire.codec import decode_request
from switchyard.wire.responses import ResponsesRequest

GEN = "gen-1700000000-00112233445566778899"


class FakeSession:
    """Stands in for StreamSession: _frames only reads its canonical events."""

    def __init__(self, items: list[ChatChunk | None]) -> None:
        self.items = items

    async def events(self) -> AsyncGenerator[ChatChunk | None, None]:
        for item in self.items:
            yield item


def chunk(text: str) -> ChatChunk:
    choice = StreamChoice(index=0, delta=Delta(content=text))
    return ChatChunk(id=GEN, created=1, model="m", choices=[choice])


async def test_frames_name_events_keep_alive_and_end_with_done() -> None:
    translation = to_chat(decode_request(b'{"model": "m", "input": "hi"}', ResponsesRequest))
    stream = ResponseStream(translation, GEN, "m", 1)
    usage = Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3)
    session = FakeSession(
        [None, None, chunk("Hel"), chunk("lo"), ChatChunk(GEN, 1, "m", [], usage=usage)]
    )
    body = b"".join([f async for f in _frames(cast(StreamSession, session), stream)])

    # Keep-alive ticks become SSE comments, after the opening events and before any delta.
    assert body.count(b"\n: ") + body.startswith(b": ") == 2
    assert body.index(b"event: response.in_progress") < body.index(b"\n: ")
    assert body.index(b"\n: ") < body.index(b"event: response.output_item.added")

    events = list(SSEDecoder().iter_bytes(iter([body])))
    assert events[-1].data == "[DONE]"
    decoded: list[dict[str, Any]] = [json.loads(e.data) for e in events[:-1]]
    # Every frame names its event twice, in `event:` and in the data's `type`, like OpenAI.
    assert [e.event for e in events[:-1]] == [d["type"] for d in decoded]
    assert [d["sequence_number"] for d in decoded] == list(range(len(decoded)))
    assert decoded[-1]["type"] == "response.completed"
    assert decoded[-1]["response"]["output"][0]["content"][0]["text"] == "Hello"
    assert decoded[-1]["response"]["usage"]["total_tokens"] == 3
