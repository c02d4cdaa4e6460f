"""Hard filters: endpoints a request must not be sent to, each with the reason why.

Reasons are the names of what excluded the endpoint (``context_length``, ``max_price``,
``require_parameters``, ...) so an error can tell a user which part of the request to change.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from msgspec import UNSET

from switchyard.catalog import Catalog, Endpoint
from switchyard.errors import InvalidRequest
from switchyard.wire.chat import ChatRequest, MaxPrice, ProviderPreferences

MILLION = Decimal(1_000_000)

# Request fields that are routing or bookkeeping, not model parameters: require_parameters
# does not ask endpoints to "support" them.
NOT_PARAMETERS = frozenset(
    {
        "messages",
        "model",
        "models",
        "stream",
        "stream_options",
        "provider",
        "user",
        "metadata",
        "session_id",
        "plugins",
        "route",
        "transforms",
        "debug",
        "trace",
        "prompt_cache_key",
        "cache_control",
        "prompt_cache_options",
        "service_tier",
        "image_config",
    }
)


def sent_parameters(request: ChatRequest) -> set[str]:
    """The model parameters a request sets, named as in ``supported_parameters``."""
    sent = {
        name
        for name in request.__struct_fields__
        if name not in NOT_PARAMETERS and getattr(request, name) not in (UNSET, None)
    }
    if request.response_format is not UNSET and type(request.response_format).__name__ == (
        "JsonSchemaFormat"
    ):
        sent.add("structured_outputs")
    return sent


def matches(endpoint: Endpoint, catalog: Catalog, names: Collection[str]) -> bool:
    """A base slug ("azure") matches every variant of a provider; a full tag ("azure/eu")
    matches one endpoint; provider display names ("Azure") work too."""
    tag = (endpoint.tag or endpoint.provider).lower()
    provider = catalog.providers[endpoint.provider]
    for name in names:
        wanted = name.lower()
        if wanted in (tag, endpoint.provider, provider.name.lower()):
            return True
        if "/" not in wanted and tag.split("/", 1)[0] == wanted:
            return True
    return False


@dataclass(frozen=True, slots=True)
class PriceCaps:
    """max_price, per token / per unit (the request gives USD per million tokens)."""

    prompt: Decimal | None
    completion: Decimal | None
    image: Decimal | None
    request: Decimal | None

    @classmethod
    def parse(cls, caps: MaxPrice) -> PriceCaps:
        def value(name: str, per_million: bool) -> Decimal | None:
            raw = getattr(caps, name)
            if raw is UNSET or raw is None:
                return None
            try:
                number = Decimal(str(raw))
            except InvalidOperation:
                number = Decimal("NaN")
            if not number.is_finite() or number < 0:
                raise InvalidRequest(
                    f"`provider.max_price.{name}` must be a non-negative number",
                    field=f"provider.max_price.{name}",
                )
            return number / MILLION if per_million else number

        return cls(
            value("prompt", True),
            value("completion", True),
            value("image", False),
            value("request", False),
        )

    def allows(self, endpoint: Endpoint) -> bool:
        p = endpoint.pricing
        return not (
            (self.prompt is not None and p.prompt > self.prompt)
            or (self.completion is not None and p.completion > self.completion)
            or (self.image is not None and p.image > self.image)
            or (self.request is not None and p.request > self.request)
        )


def endpoint_filter(
    request: ChatRequest, prefs: ProviderPreferences, catalog: Catalog, available: Collection[str]
) -> Callable[[Endpoint], str | None]:
    """A function telling why an endpoint is excluded (None: it may serve)."""
    only = prefs.only if isinstance(prefs.only, list) else None
    ignore = prefs.ignore if isinstance(prefs.ignore, list) else None
    quantizations = set(prefs.quantizations) if isinstance(prefs.quantizations, list) else None
    caps = PriceCaps.parse(prefs.max_price) if isinstance(prefs.max_price, MaxPrice) else None
    deny_collection = prefs.data_collection == "deny"
    zdr = prefs.zdr is True
    required = sent_parameters(request) if prefs.require_parameters is True else None
    output = request.output_limit()

    def why(endpoint: Endpoint) -> str | None:
        provider = catalog.providers[endpoint.provider]
        if endpoint.provider not in available:
            return "provider_not_configured"
        if only is not None and not matches(endpoint, catalog, only):
            return "provider.only"
        if ignore is not None and matches(endpoint, catalog, ignore):
            return "provider.ignore"
        if quantizations is not None and endpoint.quantization not in quantizations:
            return "quantizations"
        if deny_collection and provider.data_policy.training:
            return "data_collection"
        if zdr and provider.data_policy.retains_prompts:
            return "zdr"
        if caps is not None and not caps.allows(endpoint):
            return "max_price"
        if required is not None:
            supported = set(catalog.endpoint_parameters(endpoint))
            aliases = {"max_completion_tokens": "max_tokens", "max_tokens": "max_completion_tokens"}
            missing = {
                name
                for name in required
                if name not in supported and aliases.get(name) not in supported
            }
            if missing:
                return "require_parameters"
        if (
            output is not None
            and endpoint.max_completion_tokens is not None
            and (output > endpoint.max_completion_tokens)
        ):
            return "max_tokens"
        return None

    return why
