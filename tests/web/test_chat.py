"""The chat playground streams tokens into the page as they arrive, for one or two models."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.simulators.openai_sim import SimulatorHandle
from tests.web.conftest import Site, shot, wait_for_rollups

# Records every length the streamed reply reaches, so a test can tell a stream from a
# reply that appeared all at once.
WATCH = """
window.lengths = {1: [], 2: []};
for (const pane of [1, 2]) {
  const transcript = document.getElementById("transcript-" + pane);
  new MutationObserver(() => {
    const replies = transcript.querySelectorAll(".turn-assistant .content");
    const last = replies[replies.length - 1];
    if (last) { window.lengths[pane].push(last.textContent.length); }
  }).observe(transcript, {childList: true, subtree: true, characterData: true});
}
"""


def test_chat_streams_tokens_side_by_side(site: Site, page: Page, sim: SimulatorHandle) -> None:
    sim.reset()
    sim.configure(reply="one two three four five six seven eight nine ten", chunks=10)
    sim.add_faults({"kind": "slow_tokens", "ms": 120})
    try:
        page.goto(f"{site.url}/chat")
        page.get_by_label("Inference API key").fill(site.server.api_key)
        page.get_by_label("Model 1", exact=True).select_option("openai/gpt-4o")
        expect(page.locator("#pane-2")).to_be_hidden()
        page.get_by_label("Compare two models side by side").check()
        expect(page.locator("#pane-2")).to_be_visible()
        page.get_by_label("Model 2", exact=True).select_option("local/smollm2-135m-instruct")
        page.get_by_label("Max tokens").fill("8")
        page.evaluate(WATCH)
        page.get_by_label("Message").fill("Count to ten")
        page.get_by_role("button", name="Send").click()

        expect(page.get_by_role("button", name="Stop")).to_be_enabled()
        reply = page.locator("#transcript-1 .turn-assistant .content")
        # Max tokens (8) reached the upstream: the ten-word reply stops after eight.
        expect(reply).to_have_text(
            re.compile(r"^one two three four five six seven eight\s*$"), timeout=20_000
        )
        expect(page.locator("#status-1")).to_contain_text("Done", timeout=20_000)
        expect(page.locator("#status-2")).to_contain_text("Done", timeout=30_000)
        local = page.locator("#transcript-2 .turn-assistant .content")
        assert local.inner_text().strip() != ""
        expect(page.locator("#transcript-1 .turn-user .content")).to_have_text("Count to ten")
        expect(page.locator("#transcript-2 .turn-user .content")).to_have_text("Count to ten")
        shot(page, "chat")

        for pane, model in ((1, "openai/gpt-4o"), (2, "local/smollm2-135m-instruct")):
            status = page.locator(f"#status-{pane}").inner_text()
            used = re.search(r"(\d+) prompt \+ (\d+) completion tokens", status)
            assert used is not None, status
            site.add(model, int(used[1]) + int(used[2]), "Switchyard Chat")
        wait_for_rollups(site)  # the other pages check these generations too

        lengths = page.evaluate("window.lengths[1]")
        growing = sorted(set(lengths))
        # Tokens arrived one by one: many partial lengths before the whole reply.
        assert len(growing) >= 5, lengths
        assert lengths == sorted(lengths)

        # The request carried the form's parameters and the playground's attribution.
        sent = sim.requests()[-1]
        body = sent["body"]
        assert body["stream"] is True and body["max_tokens"] == 8
        assert body["messages"][-1] == {"role": "user", "content": "Count to ten"}
    finally:
        sim.reset()


def test_chat_asks_for_a_key_and_shows_api_errors(site: Site, page: Page) -> None:
    page.goto(f"{site.url}/chat")
    page.get_by_label("Message").fill("hello")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("alert")).to_have_text("Paste an inference API key first.")
    expect(page.get_by_label("Inference API key")).to_be_focused()

    # A management key cannot call inference: the API's own message is shown.
    page.get_by_label("Inference API key").fill(site.server.management_key)
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#status-1")).to_contain_text("Management keys cannot call inference")
    assert page.evaluate("sessionStorage.getItem('switchyard-inference-key')") == (
        site.server.management_key
    )
