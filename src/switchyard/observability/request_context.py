"""The id of the HTTP request being served, visible to every log line emitted while serving it.

A context variable, not a parameter: log calls deep in providers or accounting must not need
the request threaded through them. Each request runs in its own task (uvicorn) with a copy
of the context, and tasks it spawns (the SSE pump) copy it again, so the id follows the
work wherever it goes without leaking into other requests.
"""

from __future__ import annotations

import itertools
import re
import secrets
from contextvars import ContextVar, Token

REQUEST_ID_HEADER = "X-Request-Id"

# Ids a client may choose: what tracing headers and load balancers use (letters, digits and
# a few separators), short enough that logs and response headers stay tidy. Anything else is
# replaced rather than refused: a bad id must never fail the request it labels.
_SANE = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")

_request_id: ContextVar[str | None] = ContextVar("switchyard_request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


# A random prefix per process and a counter: unique across replicas and restarts, and a
# fraction of the cost of a random UUID (a system call) per request. Request ids label, they
# do not authorise, so being guessable does no harm.
_PROCESS_PREFIX = secrets.token_hex(8)
_sequence = itertools.count()


def new_request_id() -> str:
    return f"{_PROCESS_PREFIX}{next(_sequence):016x}"


def accepted_request_id(incoming: bytes | None) -> str:
    """The client's id if it is sane, else a fresh one."""
    if incoming:
        try:
            candidate = incoming.decode("ascii")
        except UnicodeDecodeError:
            return new_request_id()
        if _SANE.fullmatch(candidate):
            return candidate
    return new_request_id()


def bind_request_id(request_id: str | None) -> Token[str | None]:
    """Set the current id; returns a token for :func:`unbind_request_id`."""
    return _request_id.set(request_id)


def unbind_request_id(token: Token[str | None]) -> None:
    _request_id.reset(token)
