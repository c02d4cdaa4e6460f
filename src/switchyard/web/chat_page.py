"""/chat: the playground page (its script, static/chat.js, calls the public API)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from switchyard.server.state import state_of
from switchyard.web.common import page


async def chat_page(request: Request) -> Response:
    """The playground calls the public API from the browser with a key the user pastes.

    The server never offers a key of its own, not even on loopback: it keeps only hashes,
    so it would have to mint one, and any local process or page (DNS rebinding) reaching
    the port would get a key that spends the operator's credit.
    """
    state = state_of(request)
    models = [m for m in state.view.models.values() if state.view.is_available(m.id)]
    return await page(request, "chat.html", {"title": "Chat", "models": models})
