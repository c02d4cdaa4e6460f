"""Sticky routing: conversation keys, the idle-expiring session table, and plan()'s use of it."""

from __future__ import annotations

import datetime as dt
import json
import random
from decimal import Decimal
from typing import Any

import pytest

from switchyard.catalog import Catalog, Endpoint, ModelSpec, Pricing, ProviderSpec
from switchyard.catalog.schema import Architecture
from switchyard.routing.health import BreakerState, EndpointHealth
from switchyard.routing.plan import Plan, plan
from switchyard.routing.sticky import IDLE_SECONDS, StickySessions, conversation_key
from switchyard.wire.chat import ChatRequest
from switchyard.wire.codec import decode_request

ONE = "acme/one"
TWO = "acme/two"

SYSTEM = {"role": "system", "content": "You are terse."}
USER1 = {"role": "user", "content": "What is 2+2?"}
REPLY = {"role": "assistant", "content": "4"}
USER2 = {"role": "user", "content": "And 3+3?"}


def request(**fields: Any) -> ChatRequest:
    body = {"messages": [USER1], **fields}
    return decode_request(json.dumps(body).encode(), ChatRequest)


# --- conversation_key -----------------------------------------------------------------------------


def test_session_id_names_the_conversation() -> None:
    first = request(messages=[USER1])
    other = request(messages=[SYSTEM, USER2, REPLY, USER1])
    assert conversation_key(first, "abc") == "s:abc"
    assert conversation_key(other, "abc") == "s:abc"
    assert conversation_key(first, "abd") != conversation_key(first, "abc")


def test_later_turns_share_the_opening_hash() -> None:
    turn1 = request(messages=[SYSTEM, USER1])
    turn2 = request(messages=[SYSTEM, USER1, REPLY, USER2])
    turn3 = request(messages=[SYSTEM, USER1, REPLY, USER2, REPLY, USER1])
    key = conversation_key(turn1, None)
    assert key.startswith("h:") and len(key) == 2 + 32
    assert conversation_key(turn2, None) == key
    assert conversation_key(turn3, None) == key


@pytest.mark.parametrize(
    "messages",
    [
        [USER1],  # no system prompt
        [SYSTEM, USER2],  # another opening question
        [{"role": "system", "content": "You are verbose."}, USER1],
        [SYSTEM, {"role": "developer", "content": "x"}, USER1],
    ],
)
def test_different_conversations_get_different_keys(messages: list[dict[str, Any]]) -> None:
    base = conversation_key(request(messages=[SYSTEM, USER1, REPLY, USER2]), None)
    assert conversation_key(request(messages=messages), None) != base


def test_empty_session_id_falls_back_to_the_hash() -> None:
    req = request(messages=[SYSTEM, USER1])
    assert conversation_key(req, "") == conversation_key(req, None)
    assert conversation_key(req, "").startswith("h:")


# --- StickySessions -------------------------------------------------------------------------------


def test_remember_and_get() -> None:
    sessions = StickySessions()
    assert sessions.get("k", 0.0) is None
    sessions.remember("k", "acme/one@a", 100.0)
    assert sessions.get("k", 100.0) == "acme/one@a"
    assert sessions.get("other", 100.0) is None
    sessions.remember("k", "acme/one@b", 150.0)  # served elsewhere: the latest wins
    assert sessions.get("k", 150.0) == "acme/one@b"


def test_idle_expiry_at_ten_minutes() -> None:
    assert IDLE_SECONDS == 600.0
    sessions = StickySessions()
    sessions.remember("k", "e", 1000.0)
    assert sessions.get("k", 1000.0 + 600.0) == "e"  # idle exactly 600 s: still kept
    assert sessions.get("k", 1000.0 + 600.5) is None
    assert sessions.get("k", 1000.0 + 1.0) is None  # forgotten, not just hidden


def test_each_turn_restarts_the_idle_clock() -> None:
    sessions = StickySessions()
    sessions.remember("k", "e", 0.0)
    sessions.remember("k", "e", 500.0)
    assert sessions.get("k", 1050.0) == "e"
    assert sessions.get("k", 1100.5) is None


def test_remembering_one_key_keeps_others_until_they_expire() -> None:
    sessions = StickySessions(idle_seconds=10)
    sessions.remember("old", "e1", 0.0)
    sessions.remember("new", "e2", 5.0)
    assert sessions.get("old", 9.0) == "e1"
    sessions.remember("newer", "e3", 11.0)  # "old" has expired by now
    assert sessions.get("old", 5.0) is None
    assert sessions.get("new", 11.0) == "e2"


# --- plan() with a sticky endpoint ----------------------------------------------------------------


def endpoint(provider: str, per_million: str, model: str = ONE) -> Endpoint:
    pricing = Pricing(prompt=Decimal(per_million) / 1_000_000)
    return Endpoint(
        model=model,
        provider=provider,
        upstream_model=model,
        context_length=100_000,
        pricing=pricing,
    )


def model_spec(model_id: str) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        name=model_id,
        created=dt.date(2024, 1, 1),
        description="",
        context_length=100_000,
        architecture=Architecture(["text"], ["text"], "GPT"),
        supported_parameters=["temperature"],
    )


CATALOG = Catalog(
    models={ONE: model_spec(ONE), TWO: model_spec(TWO)},
    providers={s: ProviderSpec(slug=s, name=s.upper(), protocol="openai") for s in "abcd"},
    endpoints={
        ONE: [endpoint("a", "1"), endpoint("b", "2"), endpoint("c", "3")],
        TWO: [endpoint("d", "1", TWO)],
    },
)
STICKY = f"{ONE}@c"  # the most expensive: load balancing alone puts it first ~8% of the time
FAILING = EndpointHealth(None, None, None, 3, 3, None, None, BreakerState.CLOSED)


def run(req: ChatRequest, sticky: str | None, seed: int, **health: EndpointHealth) -> Plan:
    return plan(
        req, CATALOG, frozenset("abcd"), lambda m: 0, None, health, random.Random(seed), sticky
    )


def order(result: Plan) -> list[str]:
    return [c.endpoint.key for c in result.candidates]


def test_load_balanced_plan_puts_the_sticky_endpoint_first() -> None:
    for seed in range(40):
        result = run(request(model=ONE), STICKY, seed)
        assert order(result)[0] == STICKY
        assert sorted(order(result)) == [f"{ONE}@a", f"{ONE}@b", f"{ONE}@c"]
        assert result.sticky and result.strategy == "load_balance"


def test_without_sticky_the_expensive_endpoint_is_rarely_first() -> None:
    firsts = [order(run(request(model=ONE), None, seed))[0] for seed in range(40)]
    assert firsts.count(STICKY) < 15  # the test above is not passing by chance


def test_sticky_already_first_is_reported() -> None:
    result = run(request(model=ONE, provider={"only": ["c"]}), STICKY, 0)
    assert order(result) == [STICKY]
    assert result.sticky


@pytest.mark.parametrize(
    "fields",
    [
        {"provider": {"order": ["a", "b", "c"]}},
        {"provider": {"sort": "price"}},
        {"provider": {"sort": {"by": "latency"}}},
        {"model": f"{ONE}:floor"},
        {"model": f"{ONE}:nitro"},
    ],
)
def test_explicit_order_or_sort_beats_stickiness(fields: dict[str, Any]) -> None:
    req = request(**{"model": ONE, **fields})
    for seed in range(10):
        result = run(req, STICKY, seed)
        assert order(result) == [f"{ONE}@a", f"{ONE}@b", f"{ONE}@c"]
        assert not result.sticky


def test_recently_failing_sticky_endpoint_is_not_moved() -> None:
    for seed in range(20):
        result = run(request(model=ONE), STICKY, seed, **{STICKY: FAILING})
        assert order(result)[-1] == STICKY  # failing endpoints go last
        assert not result.sticky


def test_open_breaker_sticky_endpoint_is_not_moved() -> None:
    opened = EndpointHealth(None, None, None, 0, 0, None, None, BreakerState.OPEN)
    result = run(request(model=ONE), STICKY, 0, **{STICKY: opened})
    assert order(result)[-1] == STICKY and not result.sticky


def test_sticky_endpoint_that_is_filtered_out_changes_nothing() -> None:
    req = request(model=ONE, provider={"ignore": ["c"]})
    for seed in range(10):
        with_sticky = run(req, STICKY, seed)
        assert order(with_sticky) == order(run(req, None, seed))
        assert STICKY not in order(with_sticky)
        assert not with_sticky.sticky


def test_sticky_fallback_model_does_not_jump_ahead_of_the_primary() -> None:
    # An earlier turn fell back to acme/two (say acme/one was down); acme/one is healthy again.
    result = run(request(model=ONE, models=[TWO]), f"{TWO}@d", 0)
    models = [c.model.id for c in result.candidates]
    assert models == [ONE, ONE, ONE, TWO]
