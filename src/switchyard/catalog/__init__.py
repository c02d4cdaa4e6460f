"""The catalog: models, providers and endpoints, loaded from data files and validated."""

from switchyard.catalog.loader import load_catalog
from switchyard.catalog.schema import Catalog, Endpoint, ModelSpec, Pricing, ProviderSpec

__all__ = ["Catalog", "Endpoint", "ModelSpec", "Pricing", "ProviderSpec", "load_catalog"]
