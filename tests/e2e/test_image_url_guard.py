"""Through a real server: a Gemini request whose image URL points inside the gateway's own
network (the metadata service, loopback) is refused with 400 naming the field, and nothing
is fetched or sent upstream."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.servers import RunningServer, start_server
from tests.simulators.gemini_sim import GeminiSimulatorHandle, run_in_thread

FLASH = "google/gemini-2.5-flash"


@pytest.fixture(scope="module")
def gemini_sim() -> Iterator[GeminiSimulatorHandle]:
    with run_in_thread() as handle:
        yield handle


@pytest.fixture(scope="module")
def gemini_server(
    gemini_sim: GeminiSimulatorHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    config = (
        "[local]\nenabled = false\n\n[providers.local-embeddings]\nenabled = false\n\n"
        "[providers.google-ai-studio]\n"
        f'api_key = "{gemini_sim.api_key}"\nbase_url = "{gemini_sim.base_url}"\n'
    )
    running = start_server(
        tmp_path_factory.mktemp("guard"), config, env={"GOOGLE_API_KEY": "", "GEMINI_API_KEY": ""}
    )
    yield running
    running.stop()


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://127.0.0.1:{port}/health",
        "http://[::ffff:127.0.0.1]:{port}/health",
        "http://localhost:{port}/health",
        "http://10.0.0.1/a.png",
    ],
)
def test_internal_image_urls_are_refused(
    gemini_server: RunningServer, gemini_sim: GeminiSimulatorHandle, url: str
) -> None:
    gemini_sim.reset()
    body = {
        "model": FLASH,
        "max_tokens": 5,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe"},
                    {
                        "type": "image_url",
                        "image_url": {"url": url.format(port=gemini_server.port)},
                    },
                ],
            }
        ],
    }
    response = httpx.post(
        f"{gemini_server.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {gemini_server.api_key}"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["metadata"]["field"] == "messages[0].content[1].image_url.url"
    assert "not a public address" in error["message"]
    assert gemini_sim.requests() == []
