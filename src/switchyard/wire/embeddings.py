"""Embeddings request and response types (OpenRouter ``POST /embeddings``).

The request follows OpenRouter's schema, itself OpenAI's plus ``provider`` and ``input_type``.
``input`` may be a string, a list of strings, one token array or a list of token arrays;
msgspec allows one array type per union, so the list is decoded loosely and sorted out by
:func:`parse_input`, which names the offending element on error. Multimodal inputs (content
parts) are refused: no endpoint in the catalog embeds images.

:class:`EmbeddingJob` and :class:`Embedded` are the canonical pair every embedder speaks:
inputs in, one float32 vector per input out.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
from msgspec import UNSET, Meta, Struct, UnsetType

from switchyard.errors import InvalidRequest
from switchyard.wire.chat import CostDetails, ProviderPreferences

# OpenAI's own limit on inputs per request; also what bounds one local batch.
MAX_INPUTS = 2048

Vectors = npt.NDArray[np.float32]  # shape (inputs, dimensions)


class EmbeddingsRequest(Struct):
    input: str | list[Any]
    model: Annotated[str, Meta(min_length=1)]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, Meta(ge=1)] | UnsetType = UNSET
    input_type: str | UnsetType = UNSET
    user: str | UnsetType = UNSET
    provider: ProviderPreferences | None | UnsetType = UNSET


@dataclass(frozen=True, slots=True)
class EmbeddingJob:
    """What one embedder call computes: either texts or token arrays, never both."""

    texts: list[str] | None
    token_arrays: list[list[int]] | None
    dimensions: int | None = None
    input_type: str | None = None
    user: str | None = None

    def __len__(self) -> int:
        if self.texts is not None:
            return len(self.texts)
        return len(self.token_arrays or ())


@dataclass(frozen=True, slots=True)
class Embedded:
    vectors: Vectors
    # None when the upstream did not say; the service counts with the model's encoding.
    prompt_tokens: int | None


def parse_input(value: str | list[Any]) -> tuple[list[str] | None, list[list[int]] | None]:
    """(texts, token arrays): exactly one is set, with at least one non-empty item."""
    if isinstance(value, str):
        if not value:
            raise InvalidRequest("`input` must not be an empty string", field="input")
        return [value], None
    if not value:
        raise InvalidRequest("`input` must not be an empty list", field="input")
    if len(value) > MAX_INPUTS:
        raise InvalidRequest(
            f"`input` has {len(value)} items; at most {MAX_INPUTS} are allowed", field="input"
        )
    first = value[0]
    if isinstance(first, str):
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise InvalidRequest(
                    f"`input[{i}]` must be a string, like the other items", field=f"input[{i}]"
                )
            if not item:
                raise InvalidRequest(f"`input[{i}]` must not be empty", field=f"input[{i}]")
        return list(value), None
    if _is_token(first):
        return None, [_tokens(value, "input")]
    if isinstance(first, list):
        return None, [_tokens(item, f"input[{i}]") for i, item in enumerate(value)]
    if isinstance(first, dict):
        raise InvalidRequest(
            "Multimodal `input` (content parts) is not supported; send text or token arrays",
            field="input[0]",
        )
    raise InvalidRequest(
        "`input` must be a string, a list of strings, or token arrays", field="input[0]"
    )


def _is_token(item: object) -> bool:
    return isinstance(item, int) and not isinstance(item, bool)


def _tokens(value: object, where: str) -> list[int]:
    if not isinstance(value, list) or not value:
        raise InvalidRequest(f"`{where}` must be a non-empty array of token ids", field=where)
    for i, token in enumerate(value):
        if not _is_token(token) or token < 0:
            raise InvalidRequest(
                f"`{where}[{i}]` must be a non-negative integer token id", field=f"{where}[{i}]"
            )
    return value


def encode_vector(vector: Vectors, encoding_format: str) -> list[float] | str:
    """A float list, or base64 of little-endian float32 as the OpenAI SDK decodes it."""
    if encoding_format == "base64":
        return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode()
    floats: list[float] = vector.tolist()
    return floats


def decode_base64_vector(data: str) -> Vectors:
    """The inverse of :func:`encode_vector` for base64: what upstreams send when asked."""
    return np.frombuffer(base64.b64decode(data), dtype="<f4").astype(np.float32)


# --- response -----------------------------------------------------------------------------


class Embedding(Struct):
    embedding: list[float] | str
    index: int
    object: Literal["embedding"] = "embedding"


class EmbeddingsUsage(Struct):
    prompt_tokens: int
    total_tokens: int
    cost: Decimal | UnsetType = UNSET  # a JSON number with every digit (see wire.codec)
    is_byok: bool | UnsetType = UNSET
    cost_details: CostDetails | None | UnsetType = UNSET


class EmbeddingsResponse(Struct):
    id: str
    model: str
    data: list[Embedding]
    usage: EmbeddingsUsage
    provider: str | UnsetType = UNSET
    object: Literal["list"] = "list"
