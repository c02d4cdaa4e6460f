"""The legacy Completions surface: requests onto chat requests, chat results back out."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import openai.types
import pytest
from msgspec import UNSET
from openai._models import construct_type

from switchyard.errors import InvalidRequest
from switchyard.surfaces.completions import (
    DEFAULT_MAX_TOKENS,
    ChunkTranslator,
    echo_prefix,
    legacy_logprobs,
    to_chat,
    to_completion,
)
from switchyard.wire.chat import (
    ChatChunk,
    ChatResult,
    Choice,
    Delta,
    ProviderPreferences,
    ResponseMessage,
    StreamChoice,
    StreamError,
    Usage,
    UserMessage,
)
from switchyard.wire.codec import decode_request, encode
from switchyard.wire.completions import CompletionRequest, CompletionResult


def request(**fields: Any) -> CompletionRequest:
    body = {"model": "local/gemma-3-270m", "prompt": "Once upon a time", **fields}
    return decode_request(msgspec.json.encode(body), CompletionRequest)


def invalid(**fields: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        to_chat(request(**fields))
    assert caught.value.status == 400
    return caught.value


# --- request translation ------------------------------------------------------------------


def test_the_prompt_becomes_one_user_message_verbatim() -> None:
    chat = to_chat(request(prompt="  The capital of France is\n"))
    assert len(chat.messages) == 1
    message = chat.messages[0]
    assert isinstance(message, UserMessage)
    assert message.content == "  The capital of France is\n"


def test_a_list_of_one_prompt_is_that_prompt() -> None:
    message = to_chat(request(prompt=["Hello there"])).messages[0]
    assert message.content == "Hello there"


def test_sampling_and_routing_fields_carry_over() -> None:
    chat = to_chat(
        request(
            models=["a/b", "c/d"],
            provider={"order": ["local"], "allow_fallbacks": False},
            max_tokens=7,
            temperature=0.3,
            top_p=0.9,
            top_k=12,
            min_p=0.1,
            frequency_penalty=0.5,
            presence_penalty=-0.5,
            repetition_penalty=1.1,
            seed=42,
            stop=["\n", "END"],
            logit_bias={"13": -100},
            user="u-1",
            session_id="s-1",
            stream=True,
        )
    )
    assert chat.model == "local/gemma-3-270m"
    assert chat.models == ["a/b", "c/d"]
    assert isinstance(chat.provider, ProviderPreferences)
    assert chat.provider.order == ["local"] and chat.provider.allow_fallbacks is False
    assert chat.max_tokens == 7
    assert (chat.temperature, chat.top_p, chat.top_k, chat.min_p) == (0.3, 0.9, 12, 0.1)
    assert (chat.frequency_penalty, chat.presence_penalty) == (0.5, -0.5)
    assert chat.repetition_penalty == 1.1
    assert chat.seed == 42
    assert chat.stop == ["\n", "END"]
    assert chat.logit_bias == {"13": -100}
    assert chat.user == "u-1" and chat.session_id == "s-1"
    assert chat.stream is True


def test_max_tokens_defaults_to_openais_legacy_16() -> None:
    assert DEFAULT_MAX_TOKENS == 16
    assert to_chat(request()).max_tokens == 16
    assert to_chat(request(max_tokens=None)).max_tokens == 16


def test_unsent_fields_stay_unset() -> None:
    chat = to_chat(request())
    for name in ("temperature", "top_p", "stop", "seed", "logprobs", "top_logprobs", "user"):
        assert getattr(chat, name) is UNSET, name


def test_logprobs_count_becomes_chat_top_logprobs() -> None:
    chat = to_chat(request(logprobs=3))
    assert chat.logprobs is True and chat.top_logprobs == 3
    zero = to_chat(request(logprobs=0))
    assert zero.logprobs is True and zero.top_logprobs == 0


def test_echo_prefix_is_the_prompt_only_when_asked() -> None:
    assert echo_prefix(request(echo=True, prompt="abc")) == "abc"
    assert echo_prefix(request(echo=False, prompt="abc")) == ""
    assert echo_prefix(request(prompt="abc")) == ""


# --- refusals, each naming its field ------------------------------------------------------


def test_several_prompts_are_refused() -> None:
    error = invalid(prompt=["one", "two"])
    assert error.field == "prompt"
    assert "2 prompts" in error.message


def test_an_empty_prompt_list_is_refused() -> None:
    assert invalid(prompt=[]).field == "prompt"


@pytest.mark.parametrize("prompt", [[1, 2, 3], [[1, 2], [3]]])
def test_token_id_prompts_are_refused(prompt: list[Any]) -> None:
    error = invalid(prompt=prompt)
    assert error.field == "prompt[0]"
    assert "token ids" in error.message


def test_a_non_string_prompt_item_is_named() -> None:
    assert invalid(prompt=["ok", {"x": 1}]).field == "prompt[1]"


def test_suffix_is_refused_but_an_empty_one_is_harmless() -> None:
    assert invalid(suffix="return x").field == "suffix"
    to_chat(request(suffix=""))
    to_chat(request(suffix=None))


@pytest.mark.parametrize("name", ["n", "best_of"])
def test_more_than_one_completion_is_refused(name: str) -> None:
    assert invalid(**{name: 2}).field == name
    to_chat(request(**{name: 1}))


def test_echo_with_logprobs_is_refused() -> None:
    error = invalid(echo=True, logprobs=1)
    assert error.field == "echo"
    to_chat(request(echo=True))
    to_chat(request(echo=False, logprobs=1))


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"logprobs": 21}, "logprobs"),
        ({"logprobs": True}, "logprobs"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"frequency_penalty": 3}, "frequency_penalty"),
        ({"prompt": 5}, "prompt"),
        ({"echo": "yes"}, "echo"),
    ],
)
def test_bad_values_name_their_field(fields: dict[str, Any], field: str) -> None:
    body = msgspec.json.encode({"model": "m/x", "prompt": "hi", **fields})
    with pytest.raises(InvalidRequest) as caught:
        decode_request(body, CompletionRequest)
    assert caught.value.field == field


def test_a_missing_prompt_is_named() -> None:
    with pytest.raises(InvalidRequest) as caught:
        decode_request(b'{"model": "m/x"}', CompletionRequest)
    assert caught.value.field == "prompt"


# --- results ------------------------------------------------------------------------------


def usage() -> Usage:
    return Usage(prompt_tokens=5, completion_tokens=3, total_tokens=8, cost=Decimal("0.0000025"))


def chat_logprobs(*tokens: tuple[str, float]) -> dict[str, Any]:
    return {
        "content": [
            {
                "token": token,
                "logprob": logprob,
                "bytes": list(token.encode()),
                "top_logprobs": [{"token": "zz", "logprob": -9.0, "bytes": [122, 122]}],
            }
            for token, logprob in tokens
        ],
        "refusal": None,
    }


def chat_result(text: str, logprobs: dict[str, Any] | None = None) -> ChatResult:
    return ChatResult(
        id="gen-1",
        created=1700000000,
        model="local/gemma-3-270m",
        provider="Switchyard Local",
        choices=[
            Choice(
                index=0,
                message=ResponseMessage(content=text),
                finish_reason="length",
                native_finish_reason="length",
                logprobs=logprobs,
            )
        ],
        usage=usage(),
    )


def sdk(result: CompletionResult) -> openai.types.Completion:
    """What the official SDK makes of our bytes: the protocol check."""
    return openai.types.Completion.model_validate_json(encode(result))


def test_a_result_is_a_text_completion() -> None:
    out = sdk(to_completion(chat_result(" Paris.")))
    assert out.object == "text_completion"
    assert out.id == "gen-1" and out.model == "local/gemma-3-270m"
    assert out.choices[0].text == " Paris."
    assert out.choices[0].finish_reason == "length"
    assert out.choices[0].logprobs is None
    assert out.usage is not None and out.usage.total_tokens == 8
    assert out.model_extra is not None and out.model_extra["provider"] == "Switchyard Local"
    raw = msgspec.json.decode(encode(to_completion(chat_result("x"))))
    assert raw["usage"]["cost"] == 0.0000025
    assert raw["choices"][0]["native_finish_reason"] == "length"


def test_echo_prepends_the_prompt() -> None:
    out = to_completion(chat_result(" Paris."), echo="The capital is")
    assert out.choices[0].text == "The capital is Paris."


def test_logprobs_take_the_legacy_shape() -> None:
    result = chat_result(" the capital", chat_logprobs((" the", -0.5), (" capital", -1.25)))
    logprobs = sdk(to_completion(result)).choices[0].logprobs
    assert logprobs is not None
    assert logprobs.tokens == [" the", " capital"]
    assert logprobs.token_logprobs == [-0.5, -1.25]
    assert logprobs.text_offset == [0, 4]
    # The chosen token is among the alternatives, as in OpenAI's responses.
    assert logprobs.top_logprobs == [{"zz": -9.0, " the": -0.5}, {"zz": -9.0, " capital": -1.25}]


def test_no_chat_logprobs_means_none() -> None:
    assert legacy_logprobs(None, 0) == (None, 0)
    assert legacy_logprobs({"content": None, "refusal": None}, 3) == (None, 3)


# --- streams ------------------------------------------------------------------------------


def chunk(
    content: str | None = None,
    finish: str | None = None,
    logprobs: dict[str, Any] | None = None,
    role: bool = False,
) -> ChatChunk:
    delta = Delta(content=content if content is not None else UNSET)
    if role:
        delta.role = "assistant"
    return ChatChunk(
        id="gen-2",
        created=1700000001,
        model="local/gemma-3-270m",
        provider="Switchyard Local",
        choices=[
            StreamChoice(
                index=0,
                delta=delta,
                finish_reason=finish,
                native_finish_reason=finish,
                logprobs=logprobs if logprobs is not None else UNSET,
            )
        ],
    )


def usage_chunk() -> ChatChunk:
    return ChatChunk(id="gen-2", created=1700000001, model="m", choices=[], usage=usage())


def sdk_chunk(result: CompletionResult) -> openai.types.Completion:
    """A stream chunk as the SDK reads one: leniently, since finish_reason is null mid-way."""
    data = msgspec.json.decode(encode(result))
    for choice in data["choices"]:
        assert choice["finish_reason"] in (None, "stop", "length", "content_filter")
    chunk = construct_type(type_=openai.types.Completion, value=data)
    assert isinstance(chunk, openai.types.Completion)
    return chunk


def run(translator: ChunkTranslator, *chunks: ChatChunk) -> list[openai.types.Completion]:
    return [sdk_chunk(out) for c in chunks for out in translator.translate(c)]


def test_a_stream_carries_text_then_one_usage_chunk() -> None:
    out = run(
        ChunkTranslator(),
        chunk("", role=True),  # role-only: nothing to say in this API
        chunk(" Paris"),
        chunk(".", finish="stop"),
        usage_chunk(),
    )
    assert [c.choices[0].text for c in out[:2]] == [" Paris", "."]
    assert out[1].choices[0].finish_reason == "stop"
    assert all(c.object == "text_completion" and c.id == "gen-2" for c in out)
    assert out[2].choices == [] and out[2].usage is not None
    assert out[2].usage.completion_tokens == 3
    assert len(out) == 3


def test_a_streamed_echo_comes_first() -> None:
    out = run(ChunkTranslator("Once"), chunk("", role=True), chunk(" upon"), usage_chunk())
    assert "".join(c.choices[0].text for c in out if c.choices) == "Once upon"
    assert out[0].choices[0].text == "Once"


def test_a_streamed_echo_survives_an_empty_generation() -> None:
    out = run(ChunkTranslator("Once"), usage_chunk())
    assert [c.choices[0].text for c in out if c.choices] == ["Once"]
    assert out[-1].usage is not None


def test_streamed_logprob_offsets_run_across_chunks() -> None:
    out = run(
        ChunkTranslator(),
        chunk(" the", logprobs=chat_logprobs((" the", -0.5))),
        chunk(" capital", logprobs=chat_logprobs((" capital", -1.0))),
    )
    first, second = (c.choices[0].logprobs for c in out)
    assert first is not None and second is not None
    assert first.text_offset == [0] and second.text_offset == [4]
    assert second.tokens == [" capital"]


def test_a_broken_stream_ends_in_an_error_chunk() -> None:
    broken = ChatChunk(
        id="gen-3",
        created=1,
        model="m",
        choices=[StreamChoice(index=0, delta=Delta(content=""), finish_reason="error")],
        error=StreamError(code=502, message="upstream went away"),
    )
    (out,) = ChunkTranslator().translate(broken)
    raw = msgspec.json.decode(encode(out))
    assert raw["choices"] == [
        {
            "index": 0,
            "text": "",
            "finish_reason": "error",
            "native_finish_reason": None,
            "logprobs": None,
        }
    ]
    assert raw["error"] == {"code": 502, "message": "upstream went away"}
