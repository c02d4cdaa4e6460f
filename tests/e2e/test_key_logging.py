"""No key reaches the server's log: not a valid one, not an invalid one, not a malformed one,
whether it came in a header or a body, and not the provider key from the config file.

The server runs at debug level with the access log on, the most it ever writes, and the
requests succeed, fail authentication, fail validation and fail upstream.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.servers import RunningServer, provider_config, start_server
from tests.simulators.openai_sim import SimulatorHandle

PROVIDER_KEY = "sk-sim-test"  # what provider_config() writes into the config file
MODEL = "openai/gpt-4o-mini-2024-07-18"


@pytest.fixture(scope="module")
def loud_server(
    sim: SimulatorHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    config = (
        'log_level = "debug"\n\n[local]\nenabled = false\n\n'
        "[providers.local-embeddings]\nenabled = false\n\n" + provider_config(sim.base_url)
    )
    running = start_server(tmp_path_factory.mktemp("loud"), config, args=["--access-log"])
    yield running
    running.stop()


def test_keys_never_reach_the_log(loud_server: RunningServer, sim: SimulatorHandle) -> None:
    sim.reset()
    valid, admin = loud_server.api_key, loud_server.management_key
    invalid = "sk-or-v1-" + secrets.token_hex(32)
    malformed = [
        "sk-or-v1-" + secrets.token_hex(5) + "\u00e9\u2603",
        "Basic " + secrets.token_urlsafe(24),
        "sk-" + "A" * 5000 + secrets.token_hex(4),
        "Bearer Bearer " + secrets.token_hex(12),
    ]
    chat = {"model": MODEL, "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]}
    base = loud_server.base_url
    with httpx.Client(timeout=30) as client:

        def post(path: str, body: object, headers: dict[str, str]) -> httpx.Response:
            return client.post(f"{base}{path}", json=body, headers=headers)

        # Valid keys: successful calls, streamed and not, on every surface.
        assert (
            post("/chat/completions", chat, {"Authorization": f"Bearer {valid}"}).status_code == 200
        )
        streamed = post(
            "/chat/completions", {**chat, "stream": True}, {"Authorization": f"Bearer {valid}"}
        )
        assert streamed.status_code == 200
        messages = {
            "model": MODEL,
            "max_tokens": 3,
            "messages": [{"role": "user", "content": "hi"}],
        }
        assert post("/messages", messages, {"x-api-key": valid}).status_code == 200
        assert (
            client.get(f"{base}/key", headers={"Authorization": f"Bearer {valid}"}).status_code
            == 200
        )
        assert (
            client.get(f"{base}/keys", headers={"Authorization": f"Bearer {admin}"}).status_code
            == 200
        )
        # An upstream failure with a valid key.
        sim.add_faults({"kind": "status", "status": 500})
        post("/chat/completions", chat, {"Authorization": f"Bearer {valid}"})
        # Invalid and malformed keys in headers.
        for bad in [invalid, *malformed]:
            header = bad if bad.startswith(("Basic", "Bearer")) else f"Bearer {bad}"
            try:
                response = post("/chat/completions", chat, {"Authorization": header})
                assert response.status_code == 401
                response = post("/messages", messages, {"x-api-key": bad})
                assert response.status_code == 401
            except (UnicodeEncodeError, httpx.LocalProtocolError):
                continue  # a header httpx itself refuses to send never reaches the server
        # Keys in bodies: where a key does not belong, in a field that is echoed in errors,
        # and in a body that is not JSON at all.
        auth = {"Authorization": f"Bearer {valid}"}
        assert post(
            "/chat/completions", {**chat, "api_key": invalid, "model": admin}, auth
        ).status_code in (400, 404)
        assert (
            post("/chat/completions", {**chat, "messages": [{"role": valid}]}, auth).status_code
            == 400
        )
        raw = client.post(
            f"{base}/chat/completions",
            content=f'{{"model": "{invalid}", "messages": [{{'.encode(),
            headers={**auth, "Content-Type": "application/json"},
        )
        assert raw.status_code == 400
        assert post("/keys", {"name": admin}, {"Authorization": f"Bearer {valid}"}).status_code in (
            401,
            403,
        )

    log = loud_server.log()
    assert "POST /api/v1/chat/completions" in log  # the access log is on and being written
    for secret in [valid, admin, invalid, PROVIDER_KEY, *malformed]:
        for fragment in {secret, secret.split()[-1][-24:]}:
            assert fragment not in log, f"a key reached the log: {fragment[:12]}..."
