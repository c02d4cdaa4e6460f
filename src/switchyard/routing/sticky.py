"""Sticky routing: keep a conversation on the endpoint that holds its prompt cache.

A conversation is named by its ``session_id`` (body, else the ``x-session-id`` header), or
else by a hash of its opening messages (up to the first user message), which every later
turn of the same conversation repeats. Only endpoints that cache prompts are remembered, and
a conversation idle for ten minutes is forgotten.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from switchyard.wire.chat import ChatRequest, UserMessage
from switchyard.wire.codec import encode

IDLE_SECONDS = 600.0
MAX_SESSIONS = 100_000


def conversation_key(request: ChatRequest, session_id: str | None) -> str:
    if session_id:
        return "s:" + session_id
    opening = []
    for message in request.messages:
        opening.append(message)
        if isinstance(message, UserMessage):
            break
    return "h:" + hashlib.blake2b(encode(opening), digest_size=16).hexdigest()


class StickySessions:
    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        self._idle = idle_seconds
        self._sessions: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def get(self, key: str, now: float) -> str | None:
        found = self._sessions.get(key)
        if found is None:
            return None
        endpoint, last_used = found
        if now - last_used > self._idle:
            del self._sessions[key]
            return None
        return endpoint

    def remember(self, key: str, endpoint: str, now: float) -> None:
        self._sessions[key] = (endpoint, now)
        self._sessions.move_to_end(key)
        # Oldest first: drop what has expired, and keep the table bounded.
        while self._sessions:
            oldest_key, (_, last_used) = next(iter(self._sessions.items()))
            if now - last_used <= self._idle and len(self._sessions) <= MAX_SESSIONS:
                break
            del self._sessions[oldest_key]
