"""How traces name our providers: the OpenTelemetry GenAI ``gen_ai.provider.name`` values.

The semantic conventions list well-known values for the big vendors; a provider not listed
there is named by its catalog slug, as the conventions allow for systems they do not know.
"""

from __future__ import annotations

# Catalog provider slug -> the conventions' well-known value.
_WELL_KNOWN = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "amazon-bedrock": "aws.bedrock",
    "google-ai-studio": "gcp.gemini",
    "groq": "groq",
    "mistral": "mistral_ai",
}


def genai_provider_name(slug: str) -> str:
    return _WELL_KNOWN.get(slug, slug)
