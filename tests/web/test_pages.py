"""Every page in headless Chromium, checked against the catalog and the recorded traffic."""

from __future__ import annotations

import re
from decimal import Decimal

from playwright.sync_api import Locator, Page, expect

from switchyard.catalog import Endpoint, load_catalog
from switchyard.web.render import compact, context, per_million
from tests.web.conftest import APP_TITLE, Site, shot

CATALOG = load_catalog()
GPT4O = "openai/gpt-4o"
# The site's server configures these (tests/web/conftest.py); the rest of the catalog's
# providers have no credentials there, so their models are not listed.
CONFIGURED = {"openai", "azure", "local", "local-embeddings"}


def served_here(model_id: str) -> list[Endpoint]:
    return [e for e in CATALOG.endpoints_for(model_id) if e.provider in CONFIGURED]


# What /models lists by default: models a configured provider serves, with text output.
LISTED = {
    model_id: spec
    for model_id, spec in CATALOG.models.items()
    if served_here(model_id) and "text" in spec.architecture.output_modalities
}


def expect_apps(items: Locator, apps: dict[str, int]) -> None:
    """The list names exactly these apps, most tokens first, with their token counts."""
    assert APP_TITLE in apps
    ranked = sorted(apps.items(), key=lambda item: (-item[1], item[0]))
    expect(items).to_have_count(len(ranked))
    for index, (app, tokens) in enumerate(ranked):
        expect(items.nth(index).locator(".name")).to_have_text(app)
        expect(items.nth(index).locator(".value")).to_have_attribute("data-tokens", str(tokens))


def test_models_lists_the_catalog_with_its_prices(site: Site, page: Page) -> None:
    page.goto(f"{site.url}/models")
    expect(page).to_have_title(re.compile("Models"))
    cards = page.locator(".model-card")
    expect(cards).to_have_count(len(LISTED))
    for model_id, spec in LISTED.items():
        card = page.locator(f'.model-card[data-model-id="{model_id}"]')
        expect(card.get_by_role("link", name=spec.name)).to_be_visible()
        cheapest = min(served_here(model_id), key=lambda e: e.pricing.prompt + e.pricing.completion)
        expect(card.locator('[data-field="input-price"]')).to_have_text(
            per_million(cheapest.pricing.prompt) + "/M"
        )
        expect(card.locator('[data-field="context"]')).to_have_text(context(spec.context_length))
    weekly = page.locator(f'.model-card[data-model-id="{GPT4O}"] [data-field="weekly-tokens"]')
    expect(weekly).to_have_text(compact(site.tokens[GPT4O]))
    shot(page, "models")


def test_models_filters_and_sorts(site: Site, page: Page) -> None:
    page.goto(f"{site.url}/models")
    page.get_by_label("Search").fill("4o-mini")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".model-card")).to_have_count(1)
    expect(page.locator(".model-card h3")).to_have_text("OpenAI: GPT-4o-mini (2024-07-18)")

    page.goto(f"{site.url}/models")
    page.get_by_label("Provider").select_option("local")
    page.get_by_label("Sort by").select_option("pricing-high-to-low")
    page.get_by_role("button", name="Apply").click()
    local = [m for m in LISTED if any(e.provider == "local" for e in served_here(m))]
    expect(page.locator(".model-card")).to_have_count(len(local))

    page.goto(f"{site.url}/models?sort=pricing-low-to-high")
    ids = page.locator(".model-card").evaluate_all("cards => cards.map(c => c.dataset.modelId)")

    def price(model_id: str) -> Decimal:
        e = min(served_here(model_id), key=lambda e: e.pricing.prompt)
        return e.pricing.prompt + e.pricing.completion

    assert [price(m) for m in ids] == sorted(price(m) for m in ids)

    # Only measured models have a throughput; they come first, fastest first.
    page.goto(f"{site.url}/models?sort=throughput-high-to-low")
    first_three = page.locator(".model-card").evaluate_all(
        "cards => cards.slice(0, 3).map(c => c.dataset.modelId)"
    )
    assert set(first_three) == set(site.tokens)

    page.goto(f"{site.url}/models?parameter=top_k")
    takes_top_k = [m for m, spec in LISTED.items() if "top_k" in spec.supported_parameters]
    assert takes_top_k and all(m.startswith("local/") for m in takes_top_k)
    expect(page.locator(".model-card")).to_have_count(len(takes_top_k))

    response = page.goto(f"{site.url}/models?context=lots")
    assert response is not None and response.status == 400
    expect(page.get_by_role("alert")).to_contain_text("context")
    response = page.goto(f"{site.url}/models?sort=sideways")
    assert response is not None and response.status == 400
    expect(page.get_by_role("alert")).to_contain_text("sort")
    expect(page.get_by_label("Sort by")).to_have_attribute("aria-invalid", "true")


def test_model_page_tabs_show_catalog_and_recorded_stats(site: Site, page: Page) -> None:
    spec = CATALOG.models[GPT4O]
    page.goto(f"{site.url}/{GPT4O}")
    expect(page.get_by_role("heading", level=1)).to_have_text(spec.name)
    expect(page.locator("#model-id")).to_have_text(GPT4O)
    expect(page.locator(".tags")).to_contain_text("#multimodal")
    header = page.locator(".model-header")
    expect(header.locator('[data-field="input-price"]')).to_contain_text("$2.50")
    expect(header.locator('[data-field="output-price"]')).to_contain_text("$10")
    expect(header.locator('[data-field="image-price"]')).to_contain_text("$3.613")
    expect(header.locator('[data-field="context"]')).to_have_text("128K")
    expect(header.locator('[data-field="released"]')).to_have_text("May 13, 2024")
    expect(header.locator('[data-field="weekly-tokens"]')).to_have_text(compact(site.tokens[GPT4O]))
    page.get_by_role("button", name="Copy model id").click()
    expect(page.locator(".copy-status")).to_have_text("Copied")

    tabs = page.get_by_role("tab")
    expect(tabs).to_have_text(
        ["Overview", "Providers", "Performance", "Pricing", "Apps", "Activity", "Uptime", "API"]
    )
    expect(page.locator("#overview")).to_be_visible()
    expect(page.locator("#providers")).to_be_hidden()

    page.get_by_role("tab", name="Providers").click()
    expect(page.locator("#providers")).to_be_visible()
    expect(page.locator("#overview")).to_be_hidden()
    rows = page.locator("#providers-table tbody tr")
    expect(rows).to_have_count(len(CATALOG.endpoints_for(GPT4O)))
    # Routing balances gpt-4o over OpenAI and Azure (same price): whichever served shows
    # full uptime and measured timings; an endpoint that served nothing shows none.
    measured = 0
    for endpoint in CATALOG.endpoints_for(GPT4O):
        row = page.locator(f'#providers-table tr[data-endpoint="{endpoint.key}"]')
        uptime = row.locator('[data-field="uptime"]').inner_text()
        latency = row.locator('[data-field="latency"]').inner_text()
        throughput = row.locator('[data-field="throughput"]').inner_text()
        if uptime == "—":
            assert latency == "—" and throughput == "—"
            continue
        measured += 1
        assert uptime == "100.0%"
        assert re.fullmatch(r"\d+ ms|\d+\.\d+ s", latency), latency
        assert throughput.endswith("tok/s")
    assert measured >= 1
    shot(page, "model-providers")

    # Keyboard: arrows move between tabs.
    page.get_by_role("tab", name="Providers").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Performance")).to_be_focused()
    expect(page.locator("#performance")).to_be_visible()
    for chart in ("latency", "throughput"):
        expect(page.locator(f'[data-chart="{chart}"][data-rendered="true"] canvas')).to_be_visible()
    shot(page, "model-performance")

    page.get_by_role("tab", name="Pricing").click()
    expect(page.locator("#pricing-table tbody tr").first).to_contain_text("$1.25")

    page.get_by_role("tab", name="Apps").click()
    expect_apps(page.locator("#apps-list li"), site.apps(GPT4O))

    page.get_by_role("tab", name="Activity").click()
    expect(page.locator('[data-chart="tokens"][data-rendered="true"] canvas')).to_be_visible()
    versions = page.locator("#versions-table tbody tr")
    expect(versions).to_have_count(3)  # gpt-4o and its two dated snapshots
    total = site.tokens[GPT4O] + site.tokens["openai/gpt-4o-2024-05-13"]
    share = round(100 * site.tokens[GPT4O] / total, 2)
    expect(versions.first).to_contain_text(f"{share}%")
    shot(page, "model-activity")

    page.get_by_role("tab", name="Uptime").click()
    expect(page.locator('[data-chart="uptime"][data-rendered="true"] canvas')).to_be_visible()
    expect(page.locator("#uptime-table tbody")).to_contain_text("100.0%")

    page.get_by_role("tab", name="API").click()
    expect(page).to_have_url(re.compile("#api$"))
    for sample in ("curl", "openai-python", "openrouter-python", "typescript"):
        expect(page.locator(f"#code-{sample}")).to_contain_text(f'"{GPT4O}"', use_inner_text=False)
    names = page.locator("#parameters-table tbody th").all_inner_texts()
    assert names == list(spec.supported_parameters)
    shot(page, "model-api")


def test_pricing_tab_shows_a_long_context_tier(site: Site, page: Page) -> None:
    page.goto(f"{site.url}/google/gemini-2.5-pro")
    page.get_by_role("tab", name="Pricing").click()
    rows = page.locator("#pricing-table tbody tr")
    expect(rows.first).to_contain_text("$1.25")
    long = page.locator("#pricing-table tr.long-context")
    expect(long).to_have_count(1)
    expect(long.locator("th")).to_contain_text("prompts over 200K tokens")
    expect(long.locator("td")).to_have_text(["$2.50", "$15", "$0.25", "—", "—"])


def test_unknown_model_is_a_404_page(site: Site, page: Page) -> None:
    response = page.goto(f"{site.url}/nobody/nothing")
    assert response is not None and response.status == 404
    expect(page.get_by_role("alert")).to_contain_text("nobody/nothing")


def test_providers_page(site: Site, page: Page) -> None:
    page.goto(f"{site.url}/providers")
    rows = page.locator("#providers-table tbody tr")
    expect(rows).to_have_count(len(CATALOG.providers))
    for slug, provider in CATALOG.providers.items():
        row = page.locator(f'tr[data-provider="{slug}"]')
        expect(row.locator("th")).to_contain_text(provider.name)
        status = "Available" if slug in CONFIGURED else "Not configured"
        expect(row.locator('[data-field="status"]')).to_have_text(status)
        served = {e.model for es in CATALOG.endpoints.values() for e in es if e.provider == slug}
        expect(row.locator('[data-field="models"] summary')).to_have_text(str(len(served)))
    uptimes = {
        slug: page.locator(f'tr[data-provider="{slug}"] [data-field="uptime"]').inner_text()
        for slug in ("openai", "azure", "local")
    }
    assert uptimes["local"] == "100.0%"
    assert {uptimes["openai"], uptimes["azure"]} <= {"100.0%", "—"}
    assert "100.0%" in (uptimes["openai"], uptimes["azure"])
    shot(page, "providers")


def test_rankings_by_period(site: Site, page: Page) -> None:
    for period in ("day", "week", "month"):
        page.goto(f"{site.url}/rankings?period={period}")
        items = page.locator("#model-ranking li")
        expect(items).to_have_count(len(site.tokens))
        ranked = sorted(site.tokens.items(), key=lambda item: (-item[1], item[0]))
        for index, (model_id, tokens) in enumerate(ranked):
            item = items.nth(index)
            expect(item).to_have_attribute("data-model-id", model_id)
            expect(item.locator(".value")).to_have_attribute("data-tokens", str(tokens))
        expect_apps(page.locator("#app-ranking li"), site.apps())
        expect(page.locator('[data-chart="chart"][data-rendered="true"] canvas')).to_be_visible()
    shot(page, "rankings")
    response = page.goto(f"{site.url}/rankings?period=decade")
    assert response is not None and response.status == 400


def test_activity_and_keys_need_a_management_key(site: Site, page: Page) -> None:
    page.goto(f"{site.url}/activity")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    page.get_by_label("Management key").fill(site.server.api_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("management keys")
    page.get_by_label("Management key").fill(site.server.management_key)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Activity")
    expect(page.locator('[data-field="total-tokens"]')).to_have_text(
        f"{sum(site.tokens.values()):,}"
    )
    expect(page.locator('[data-field="requests"]')).to_have_text(str(sum(site.requests.values())))
    expect(page.locator('[data-chart="chart"][data-rendered="true"] canvas')).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "switchyard_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert site.server.management_key not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # invisible to page scripts
    assert site.server.management_key not in site.server.log()
    shot(page, "activity")

    page.get_by_role("link", name="Models").click()  # every page offers to sign out
    expect(page.get_by_role("button", name=re.compile("Sign out"))).to_be_visible()
    page.get_by_role("link", name="Keys").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("API keys")
    expect(page.locator("#keys-table tbody th")).to_have_count(2)
    assert sorted(page.locator("#keys-table tbody th").all_inner_texts()) == [
        "tests",
        "tests-admin",
    ]
    shot(page, "keys")
    page.get_by_role("button", name=re.compile("Sign out")).click()
    page.goto(f"{site.url}/keys")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")


def test_theme_toggle_switches_and_persists(site: Site, page: Page) -> None:
    page.goto(f"{site.url}/models")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    toggle = page.get_by_role("button", name="Dark theme")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") != background
    page.goto(f"{site.url}/{GPT4O}#activity")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    shot(page, "model-activity-dark")


def test_landmarks_and_keyboard_navigation(site: Site, page: Page) -> None:
    page.goto(site.url)
    expect(page).to_have_url(f"{site.url}/models")
    for role in ("banner", "navigation", "main", "contentinfo", "search"):
        expect(page.get_by_role(role).first).to_be_attached()
    expect(page.get_by_role("link", name="Models")).to_have_attribute("aria-current", "page")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    # Every form control on every form page has a label.
    for path in ("/models", "/chat", "/activity"):
        page.goto(f"{site.url}{path}")
        unlabelled = page.locator("input:not([type=hidden]), select, textarea").evaluate_all(
            "els => els.filter(e => !e.labels || e.labels.length === 0).map(e => e.id)"
        )
        assert unlabelled == [], (path, unlabelled)
