"""Checks on a decoded chat request that a schema cannot express. Each names its field."""

from __future__ import annotations

from msgspec import UNSET

from switchyard.errors import InvalidRequest
from switchyard.wire.chat import ChatRequest, ImagePart, NamedToolChoice, ProviderPreferences

IMAGE_SCHEMES = ("http://", "https://", "data:image/")
PERCENTILES = frozenset({"p50", "p75", "p90", "p99"})


def _image_url_ok(url: str) -> bool:
    return url[:11].lower().startswith(IMAGE_SCHEMES)  # schemes are case-insensitive


def validate_chat(request: ChatRequest) -> None:
    for i, message in enumerate(request.messages):
        content = message.content
        if isinstance(content, list):
            if not content and message.__struct_config__.tag != "assistant":
                raise InvalidRequest(
                    f"`messages[{i}].content` must not be an empty list",
                    field=f"messages[{i}].content",
                )
            for j, part in enumerate(content):
                if isinstance(part, ImagePart) and not _image_url_ok(part.image_url.url):
                    where = f"messages[{i}].content[{j}].image_url.url"
                    raise InvalidRequest(
                        f"`{where}` must be an http(s) URL or a data:image/... URL", field=where
                    )
    choice = request.tool_choice
    if choice is not UNSET and choice != "none" and not request.tools:
        raise InvalidRequest("`tool_choice` requires `tools`", field="tool_choice")
    if isinstance(choice, NamedToolChoice):
        names = {tool.function.name for tool in request.tools or ()}
        if choice.function.name not in names:
            raise InvalidRequest(
                f"`tool_choice` names function {choice.function.name!r}, which is not in `tools`",
                field="tool_choice.function.name",
            )
    if isinstance(request.top_logprobs, int) and request.logprobs is not True:
        raise InvalidRequest("`top_logprobs` requires `logprobs: true`", field="top_logprobs")
    prefs = request.provider
    if isinstance(prefs, ProviderPreferences):
        for name in ("preferred_min_throughput", "preferred_max_latency"):
            cutoffs = getattr(prefs, name)
            if isinstance(cutoffs, dict):
                for key, value in cutoffs.items():
                    if key not in PERCENTILES or value < 0:
                        where = f"provider.{name}.{key}"
                        raise InvalidRequest(
                            f"`{where}` must be one of p50, p75, p90, p99 with a non-negative"
                            " number",
                            field=where,
                        )
            elif isinstance(cutoffs, int | float) and cutoffs < 0:
                raise InvalidRequest(
                    f"`provider.{name}` must be non-negative", field=f"provider.{name}"
                )
    effort = request.reasoning.effort if request.reasoning is not UNSET else UNSET
    if (
        isinstance(request.reasoning_effort, str)
        and isinstance(effort, str)
        and effort != request.reasoning_effort
    ):
        raise InvalidRequest(
            "`reasoning_effort` and `reasoning.effort` disagree; send one of them",
            field="reasoning_effort",
        )
