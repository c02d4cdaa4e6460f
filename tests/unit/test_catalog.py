"""The built-in catalog's facts, and the loader's checks on extra catalog files."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from switchyard.catalog import Catalog, load_catalog
from switchyard.catalog.loader import CatalogError

MILLION = Decimal(1_000_000)
SEED_MODELS = [
    "openai/gpt-4o",
    "openai/gpt-4o-2024-05-13",
    "openai/gpt-4o-2024-11-20",
    "openai/gpt-4o-mini-2024-07-18",
    "openai/gpt-4-turbo",
]
LOCAL = "local/smollm2-135m-instruct"
GOOGLE_MODELS = [
    "google/gemini-2.5-pro",
    "google/gemini-2.5-flash",
    "google/gemini-2.5-flash-lite",
    "google/gemini-2.0-flash-001",
]
LOCAL_BASE = "local/gemma-3-270m"
# USD per million tokens: (prompt, completion)
PRICES_PER_MILLION = {
    "openai/gpt-4o": ("2.50", "10"),
    "openai/gpt-4o-2024-05-13": ("5", "15"),
    "openai/gpt-4o-2024-11-20": ("2.50", "10"),
    "openai/gpt-4o-mini-2024-07-18": ("0.15", "0.60"),
    "openai/gpt-4-turbo": ("10", "30"),
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def write(tmp_path: Path, text: str, name: str = "extra.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


# --- built-in data --------------------------------------------------------------------------


EMBEDDING_MODELS = [
    "intfloat/multilingual-e5-small",
    "openai/text-embedding-3-small",
    "openai/text-embedding-3-large",
    "openai/text-embedding-ada-002",
]


def test_builtin_models(catalog: Catalog) -> None:
    # Other families (anthropic/..., ...) have their own data files and tests.
    ours = {m for m in catalog.models if m.split("/")[0] in ("openai", "local", "intfloat")}
    assert ours == {*SEED_MODELS, LOCAL, LOCAL_BASE, *EMBEDDING_MODELS}


@pytest.mark.parametrize("model", EMBEDDING_MODELS)
def test_embedding_models_output_embeddings_only(catalog: Catalog, model: str) -> None:
    assert catalog.models[model].architecture.output_modalities == ["embeddings"]
    (endpoint,) = catalog.endpoints_for(model)
    assert endpoint.pricing.completion == 0


@pytest.mark.parametrize("model", SEED_MODELS)
def test_seed_model_has_openai_and_azure_endpoints(catalog: Catalog, model: str) -> None:
    endpoints = catalog.endpoints_for(model)
    assert sorted(e.provider for e in endpoints) == ["azure", "openai"]
    assert {e.key for e in endpoints} == {f"{model}@openai", f"{model}@azure"}
    assert catalog.models[model].context_length == 128000
    assert all(e.context_length == 128000 for e in endpoints)


@pytest.mark.parametrize("model", SEED_MODELS)
def test_seed_model_prices(catalog: Catalog, model: str) -> None:
    prompt, completion = PRICES_PER_MILLION[model]
    for endpoint in catalog.endpoints_for(model):
        assert endpoint.pricing.prompt * MILLION == Decimal(prompt)
        assert endpoint.pricing.completion * MILLION == Decimal(completion)
        assert endpoint.pricing.request == 0


def test_gpt4o_image_and_cache_prices(catalog: Catalog) -> None:
    for endpoint in catalog.endpoints_for("openai/gpt-4o"):
        assert endpoint.pricing.image == Decimal("0.003613")
        assert endpoint.pricing.input_cache_read == Decimal("0.00000125")
        assert endpoint.max_completion_tokens == 16384


def test_output_limits(catalog: Catalog) -> None:
    limits = {e.key: e.max_completion_tokens for m in SEED_MODELS for e in catalog.endpoints_for(m)}
    assert limits["openai/gpt-4o-2024-05-13@openai"] == 4096
    assert limits["openai/gpt-4-turbo@azure"] == 4096
    assert limits["openai/gpt-4o-mini-2024-07-18@openai"] == 16384


def test_upstream_model_names(catalog: Catalog) -> None:
    for model in SEED_MODELS:
        for endpoint in catalog.endpoints_for(model):
            assert endpoint.upstream_model == model.removeprefix("openai/")


def test_local_model(catalog: Catalog) -> None:
    model = catalog.models[LOCAL]
    assert model.encoding == "native"
    assert model.architecture.input_modalities == ["text"]
    (endpoint,) = catalog.endpoints_for(LOCAL)
    assert endpoint.provider == "local"
    assert endpoint.context_length == 8192
    assert endpoint.pricing.is_free()


def test_local_base_model(catalog: Catalog) -> None:
    model = catalog.models[LOCAL_BASE]
    assert model.encoding == "native"
    # "none": OpenRouter's instruct type for a model without an instruction format.
    assert model.architecture.instruct_type == "none"
    (endpoint,) = catalog.endpoints_for(LOCAL_BASE)
    assert endpoint.provider == "local"
    assert endpoint.upstream_model == "gemma-3-270m-q4_k_m.gguf"
    assert endpoint.pricing.is_free()


def test_encodings(catalog: Catalog) -> None:
    assert catalog.models["openai/gpt-4-turbo"].encoding == "cl100k_base"
    assert catalog.models["openai/gpt-4o"].encoding == "o200k_base"


def test_providers(catalog: Catalog) -> None:
    assert {"openai", "azure", "local"} <= set(catalog.providers)
    assert catalog.providers["openai"].api_key_env == "OPENAI_API_KEY"
    assert catalog.providers["azure"].api_version == "2024-10-21"
    assert catalog.providers["local"].requires_api_key is False


def test_endpoint_parameters_fall_back_to_model(catalog: Catalog) -> None:
    (endpoint,) = [e for e in catalog.endpoints_for("openai/gpt-4o") if e.provider == "openai"]
    params = catalog.endpoint_parameters(endpoint)
    assert params == catalog.models["openai/gpt-4o"].supported_parameters
    assert "tools" in params
    assert "top_k" not in params


# --- extra files ----------------------------------------------------------------------------

VALID_EXTRA = """
providers:
  - slug: acme
    name: Acme
    protocol: openai
    base_url: https://acme.example/v1
models:
  - id: acme/rocket-1
    name: Rocket
    created: 2024-01-01
    description: A test model.
    context_length: 32000
    architecture: {input_modalities: [text], output_modalities: [text], tokenizer: Other}
    supported_parameters: [temperature]
endpoints:
  - model: acme/rocket-1
    provider: acme
    upstream_model: rocket-1
    context_length: 32000
    pricing: {prompt: "0.000001", completion: "0.000002"}
"""


def test_extra_file_adds_entries(tmp_path: Path) -> None:
    catalog = load_catalog([write(tmp_path, VALID_EXTRA)])
    assert "acme/rocket-1" in catalog.models
    assert "acme" in catalog.providers
    (endpoint,) = catalog.endpoints_for("acme/rocket-1")
    assert endpoint.pricing.completion == Decimal("0.000002")
    assert "openai/gpt-4o" in catalog.models  # built-ins are kept


def test_extra_file_overrides_builtin_endpoint(tmp_path: Path) -> None:
    text = """
endpoints:
  - model: openai/gpt-4o
    provider: azure
    upstream_model: my-gpt4o-deployment
    context_length: 64000
    pricing: {prompt: "0.000002", completion: "0.000008"}
"""
    catalog = load_catalog([write(tmp_path, text)])
    endpoints = {e.key: e for e in catalog.endpoints_for("openai/gpt-4o")}
    assert len(endpoints) == 2
    assert endpoints["openai/gpt-4o@azure"].upstream_model == "my-gpt4o-deployment"
    assert endpoints["openai/gpt-4o@azure"].context_length == 64000
    assert endpoints["openai/gpt-4o@openai"].upstream_model == "gpt-4o"


def test_config_extra_is_applied_after_files(tmp_path: Path) -> None:
    extra = {
        "endpoints": [
            {
                "model": "acme/rocket-1",
                "provider": "acme",
                "upstream_model": "from-config",
                "context_length": 1000,
                "pricing": {"prompt": "0", "completion": "0"},
            }
        ]
    }
    catalog = load_catalog([write(tmp_path, VALID_EXTRA)], extra=extra)
    (endpoint,) = catalog.endpoints_for("acme/rocket-1")
    assert endpoint.upstream_model == "from-config"


def test_empty_extra_file_is_fine(tmp_path: Path) -> None:
    assert set(load_catalog([write(tmp_path, "")]).models) == set(load_catalog().models)


def test_endpoint_with_unknown_model(tmp_path: Path) -> None:
    text = """
endpoints:
  - model: acme/ghost-9
    provider: openai
    upstream_model: ghost
    context_length: 1000
    pricing: {prompt: "0.000001", completion: "0.000002"}
"""
    with pytest.raises(CatalogError, match=r"unknown model 'acme/ghost-9'"):
        load_catalog([write(tmp_path, text)])


def test_endpoint_with_unknown_provider(tmp_path: Path) -> None:
    text = """
endpoints:
  - model: openai/gpt-4o
    provider: acmecloud
    upstream_model: gpt-4o
    context_length: 1000
    pricing: {prompt: "0.000001", completion: "0.000002"}
"""
    with pytest.raises(CatalogError, match=r"unknown provider 'acmecloud'"):
        load_catalog([write(tmp_path, text)])


@pytest.mark.parametrize("price", ['"-0.000001"', "-0.000001", '"-Infinity"', '"Infinity"'])
def test_negative_or_infinite_price_rejected(tmp_path: Path, price: str) -> None:
    text = f"""
endpoints:
  - model: openai/gpt-4o
    provider: openai
    upstream_model: gpt-4o
    context_length: 1000
    pricing: {{prompt: {price}, completion: "0.000002"}}
"""
    path = write(tmp_path, text)
    with pytest.raises(CatalogError) as info:
        load_catalog([path])
    assert str(path) in str(info.value)
    assert "prompt" in str(info.value)


def test_nan_price_rejected(tmp_path: Path) -> None:
    text = """
endpoints:
  - model: openai/gpt-4o
    provider: openai
    upstream_model: gpt-4o
    context_length: 1000
    pricing: {prompt: "NaN", completion: "0.000002"}
"""
    with pytest.raises(CatalogError):
        load_catalog([write(tmp_path, text)])


def test_invalid_yaml_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "endpoints: [ {model: openai/gpt-4o\n")
    with pytest.raises(CatalogError, match="not valid YAML") as info:
        load_catalog([path])
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("endpointz: []\n", "endpointz"),
        ("- a\n- b\n", "Expected `object`"),
        (
            "endpoints:\n  - {model: openai/gpt-4o, provider: openai, upstream_model: x,"
            ' context_length: 0, pricing: {prompt: "0"}}\n',
            "context_length",
        ),
        (
            "endpoints:\n  - {model: openai/gpt-4o, provider: openai, upstream_model: x,"
            ' context_length: 10, pricing: {prompt: "0", discount: "1"}}\n',
            "discount",
        ),
        ("models:\n  - {id: NotAnId, name: x}\n", "models[0]"),
    ],
)
def test_invalid_entries_rejected(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(CatalogError) as info:
        load_catalog([write(tmp_path, text)])
    assert needle in str(info.value)


def test_missing_file_rejected(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog([tmp_path / "absent.yaml"])
