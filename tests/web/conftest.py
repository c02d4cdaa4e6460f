"""A real server with real recorded traffic, and headless Chromium to look at its pages."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Response, sync_playwright

from tests.servers import RunningServer, provider_config, start_server
from tests.simulators.openai_sim import SimulatorHandle

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
APP_TITLE = "Web Test App"
APP_REFERER = "https://webtest.example"


@dataclass
class Site:
    server: RunningServer
    # Tokens (prompt + completion) the API reported, per model and per (app, model); tests
    # that make more traffic add theirs, so every page's numbers can be checked exactly.
    tokens: Counter[str] = field(default_factory=Counter)
    app_tokens: Counter[tuple[str, str]] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def add(self, model: str, tokens: int, app: str | None) -> None:
        self.tokens[model] += tokens
        self.requests[model] += 1
        if app:
            self.app_tokens[(app, model)] += tokens

    def apps(self, model: str | None = None) -> dict[str, int]:
        """Tokens per app, of one model or all."""
        totals: Counter[str] = Counter()
        for (app, app_model), tokens in self.app_tokens.items():
            if model is None or app_model == model:
                totals[app] += tokens
        return dict(totals)


def _call(site: Site, client: openai.OpenAI, model: str, app: bool, max_tokens: int) -> None:
    headers = {"X-OpenRouter-Title": APP_TITLE, "HTTP-Referer": APP_REFERER} if app else {}
    result = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Say hello"}],
        max_tokens=max_tokens,
        extra_headers=headers,
    )
    assert result.usage is not None
    site.add(
        model,
        result.usage.prompt_tokens + result.usage.completion_tokens,
        APP_TITLE if app else None,
    )


def wait_for_rollups(site: Site) -> None:
    """Usage is written in batches; wait until the rankings count every request."""
    deadline = time.monotonic() + 20
    status = 0
    while time.monotonic() < deadline:
        response = httpx.get(f"{site.url}/rankings?period=day")
        status = response.status_code
        if all(f'data-tokens="{n}"' in response.text for n in site.tokens.values()):
            return
        time.sleep(0.2)
    raise AssertionError(f"the rankings (last status {status}) never counted {site.tokens}")


@pytest.fixture(scope="session")
def site(sim: SimulatorHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    sim.reset()
    config = "health_sample_interval = 0.3\n\n" + provider_config(sim.base_url)
    running = start_server(tmp_path_factory.mktemp("web"), config)
    site = Site(running)
    client = openai.OpenAI(base_url=running.base_url, api_key=running.api_key, max_retries=0)
    try:
        for _ in range(3):
            _call(site, client, "openai/gpt-4o", app=True, max_tokens=50)
        _call(site, client, "openai/gpt-4o", app=False, max_tokens=50)
        _call(site, client, "openai/gpt-4o-2024-05-13", app=False, max_tokens=50)
        _call(site, client, "local/smollm2-135m-instruct", app=True, max_tokens=4)
        wait_for_rollups(site)
        time.sleep(0.7)  # at least two health samples for the charts over time
        yield site
    finally:
        running.stop()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def browser(artifacts: Path) -> Iterator[Browser]:
    # Module scope: Playwright's sync API runs an event loop on this thread while it is
    # open, which pytest-asyncio's tests in other modules could not run beside.
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))

    def on_console(message: ConsoleMessage) -> None:
        # Pages answered with 4xx on purpose log "Failed to load resource"; statuses of
        # documents are asserted by the tests, of anything else just below.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    def on_response(response: Response) -> None:
        # Documents' and API calls' statuses are the tests' business; assets must load.
        asset = response.request.resource_type in ("stylesheet", "script", "image", "font")
        if response.status >= 400 and asset:
            errors.append(f"{response.status} {response.url}")

    opened.on("console", on_console)
    opened.on("response", on_response)
    yield opened
    context.close()
    # A script error, a CSP violation or a missing asset fails the test that loaded it.
    assert errors == []


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
