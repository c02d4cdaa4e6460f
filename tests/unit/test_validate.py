"""validate_chat: the cross-field checks a schema cannot express, each naming its field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchyard.errors import InvalidRequest
from switchyard.wire.chat import ChatRequest
from switchyard.wire.codec import decode_request
from switchyard.wire.validate import validate_chat

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}


def request(**fields: Any) -> ChatRequest:
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}], **fields}
    return decode_request(json.dumps(body).encode(), ChatRequest)


def image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def rejected(req: ChatRequest) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        validate_chat(req)
    assert info.value.status == 400
    return info.value


def test_plain_request_is_valid() -> None:
    validate_chat(request())


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/cat.png",
        "http://example.com/cat.png",
        "data:image/png;base64,iVBORw0KGgo=",
        "data:image/jpeg;base64,/9j/4AAQ",
    ],
)
def test_accepted_image_urls(url: str) -> None:
    validate_chat(request(messages=[{"role": "user", "content": [image(url)]}]))


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/cat.png",
        "file:///etc/passwd",
        "data:text/plain;base64,aGk=",
        "example.com/cat.png",
        "",
    ],
)
def test_bad_image_url_scheme_names_the_part(url: str) -> None:
    messages = [
        {"role": "system", "content": "describe images"},
        {"role": "user", "content": [{"type": "text", "text": "what?"}, image(url)]},
    ]
    exc = rejected(request(messages=messages))
    assert exc.metadata == {"field": "messages[1].content[1].image_url.url"}


def test_only_the_bad_image_is_named() -> None:
    parts = [image("https://ok.example/a.png"), image("gopher://x"), image("ftp://y")]
    exc = rejected(request(messages=[{"role": "user", "content": parts}]))
    assert exc.field == "messages[0].content[1].image_url.url"


def test_uppercase_scheme_is_accepted() -> None:
    validate_chat(
        request(messages=[{"role": "user", "content": [image("HTTPS://example.com/a.png")]}])
    )


@pytest.mark.parametrize(
    "choice", ["auto", "required", {"type": "function", "function": {"name": "f"}}]
)
def test_tool_choice_without_tools(choice: Any) -> None:
    exc = rejected(request(tool_choice=choice))
    assert exc.field == "tool_choice"


def test_tool_choice_with_empty_tools_list() -> None:
    exc = rejected(request(tools=[], tool_choice="auto"))
    assert exc.field == "tool_choice"


def test_tool_choice_none_needs_no_tools() -> None:
    validate_chat(request(tool_choice="none"))


def test_tool_choice_naming_unknown_function() -> None:
    choice = {"type": "function", "function": {"name": "get_time"}}
    exc = rejected(request(tools=[TOOL], tool_choice=choice))
    assert exc.field == "tool_choice.function.name"
    assert "get_time" in exc.message


def test_tool_choice_naming_known_function() -> None:
    choice = {"type": "function", "function": {"name": "get_weather"}}
    validate_chat(request(tools=[TOOL], tool_choice=choice))
    validate_chat(request(tools=[TOOL], tool_choice="required"))


@pytest.mark.parametrize("logprobs", [None, False])
def test_top_logprobs_requires_logprobs(logprobs: bool | None) -> None:
    fields: dict[str, Any] = {"top_logprobs": 5}
    if logprobs is not None:
        fields["logprobs"] = logprobs
    exc = rejected(request(**fields))
    assert exc.field == "top_logprobs"


def test_top_logprobs_with_logprobs_true() -> None:
    validate_chat(request(top_logprobs=5, logprobs=True))
    validate_chat(request(top_logprobs=None))


@pytest.mark.parametrize("role", ["user", "system", "developer"])
def test_empty_content_list(role: str) -> None:
    messages = [{"role": "user", "content": "hi"}, {"role": role, "content": []}]
    exc = rejected(request(messages=messages))
    assert exc.field == "messages[1].content"


def test_empty_content_list_allowed_for_assistant() -> None:
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": []}]
    validate_chat(request(messages=messages))


def test_conflicting_reasoning_effort() -> None:
    exc = rejected(request(reasoning_effort="high", reasoning={"effort": "low"}))
    assert exc.field == "reasoning_effort"
    validate_chat(request(reasoning_effort="high", reasoning={"effort": "high"}))
