"""Server-sent events: an incremental parser for upstream streams and the framing we emit.

The parser is sans-IO (bytes in, events out) so every provider's stream handling can be
tested without sockets, and so a chunk split anywhere, even inside a UTF-8 sequence or a
``\\r\\n``, parses the same.
"""

from __future__ import annotations

from dataclasses import dataclass

DONE = b"[DONE]"


@dataclass(slots=True)
class SSEEvent:
    data: bytes
    event: str | None = None


class SSEParser:
    """Feed raw bytes; get complete events. Comments and ids are dropped."""

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._event: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buffer = self._buffer + chunk if self._buffer else chunk
        events: list[SSEEvent] = []
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line = buffer[start:end]
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if self._data:
                    events.append(SSEEvent(b"\n".join(self._data), self._event))
                self._data = []
                self._event = None
                continue
            if line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                self._event = line[6:].strip().decode("utf-8", "replace")
            # ":" comments, "id:" and "retry:" carry nothing we use.
        self._buffer = buffer[start:]
        return events

    def flush(self) -> list[SSEEvent]:
        """End of stream: a final event without its blank line still counts."""
        events = self.feed(b"\n\n") if self._buffer or self._data else []
        self._buffer = b""
        return events


def frame(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


DONE_FRAME = b"data: [DONE]\n\n"
KEEPALIVE_FRAME = b": SWITCHYARD PROCESSING\n\n"
