"""Azure OpenAI: the Chat Completions protocol on a deployment path with an api-key header.

``POST {endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...``; the
deployment, not the body's ``model``, selects the model.
"""

from __future__ import annotations

from urllib.parse import quote

import msgspec

from switchyard.catalog import Catalog, Endpoint, ProviderSpec
from switchyard.providers.openai import Credentials, OpenAIAdapter


class AzureAdapter(OpenAIAdapter):
    def __init__(
        self,
        spec: ProviderSpec,
        credentials: Credentials,
        catalog: Catalog,
        deployments: dict[str, str] | None = None,
    ) -> None:
        super().__init__(spec, credentials, catalog)
        self._deployments = deployments or {}
        self._headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip"}
        if credentials.api_key:
            self._headers["api-key"] = credentials.api_key
        self._urls: dict[str, str] = {}

    def deployment(self, endpoint: Endpoint) -> str:
        return self._deployments.get(endpoint.model, endpoint.upstream_model)

    def url(self, endpoint: Endpoint) -> str:
        url = self._urls.get(endpoint.key)
        if url is None:
            base = self.credentials.base_url
            # Accept both the resource endpoint and one already ending in /openai.
            if not base.endswith("/openai"):
                base += "/openai"
            url = self._urls[endpoint.key] = (
                f"{base}/deployments/{quote(self.deployment(endpoint), safe='')}"
                f"/chat/completions?api-version={quote(self.credentials.api_version or '')}"
            )
        return url

    def upstream_model(self, endpoint: Endpoint) -> str | msgspec.UnsetType:
        return msgspec.UNSET  # the deployment in the path names the model
