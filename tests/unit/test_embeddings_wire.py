"""Embeddings requests: decoding and validation that names the field; vector encodings."""

from __future__ import annotations

import array
import base64

import numpy as np
import pytest

from switchyard.errors import InvalidRequest
from switchyard.wire.codec import decode_request
from switchyard.wire.embeddings import (
    MAX_INPUTS,
    EmbeddingsRequest,
    decode_base64_vector,
    encode_vector,
    parse_input,
)


def decode(body: bytes) -> EmbeddingsRequest:
    return decode_request(body, EmbeddingsRequest)


def field_of(body: bytes) -> str | None:
    with pytest.raises(InvalidRequest) as caught:
        request = decode(body)
        parse_input(request.input)
    assert caught.value.status == 400
    return caught.value.field


def test_decodes_the_openrouter_fields() -> None:
    request = decode(
        b'{"model": "openai/text-embedding-3-small", "input": ["a", "b"], "dimensions": 8,'
        b' "encoding_format": "base64", "input_type": "search_query", "user": "u",'
        b' "provider": {"order": ["openai"], "allow_fallbacks": false}}'
    )
    assert request.dimensions == 8
    assert request.encoding_format == "base64"
    assert request.provider.order == ["openai"]  # type: ignore[union-attr]
    assert parse_input(request.input) == (["a", "b"], None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"input": "x"}', "model"),
        (b'{"model": "m"}', "input"),
        (b'{"model": "", "input": "x"}', "model"),
        (b'{"model": "m", "input": 3}', "input"),
        (b'{"model": "m", "input": "x", "dimensions": 0}', "dimensions"),
        (b'{"model": "m", "input": "x", "dimensions": "8"}', "dimensions"),
        (b'{"model": "m", "input": "x", "encoding_format": "int8"}', "encoding_format"),
        (b'{"model": "m", "input": "x", "provider": {"order": "openai"}}', "provider.order"),
        (b'{"model": "m", "input": ""}', "input"),
        (b'{"model": "m", "input": []}', "input"),
        (b'{"model": "m", "input": ["a", ""]}', "input[1]"),
        (b'{"model": "m", "input": ["a", 1]}', "input[1]"),
        (b'{"model": "m", "input": [1, -2]}', "input[1]"),
        (b'{"model": "m", "input": [[1], []]}', "input[1]"),
        (b'{"model": "m", "input": [[1], [2, "x"]]}', "input[1][1]"),
        (b'{"model": "m", "input": [1.5]}', "input[0]"),
        (b'{"model": "m", "input": [true]}', "input[0]"),
        (b'{"model": "m", "input": [{"content": [{"type": "text", "text": "a"}]}]}', "input[0]"),
    ],
)
def test_invalid_requests_name_the_field(body: bytes, field: str) -> None:
    assert field_of(body) == field


def test_too_many_inputs() -> None:
    with pytest.raises(InvalidRequest, match=f"at most {MAX_INPUTS}") as caught:
        parse_input(["x"] * (MAX_INPUTS + 1))
    assert caught.value.field == "input"


def test_token_arrays() -> None:
    assert parse_input([1, 2, 3]) == (None, [[1, 2, 3]])
    assert parse_input([[1, 2], [3]]) == (None, [[1, 2], [3]])


def test_base64_is_little_endian_float32_as_the_openai_sdk_decodes_it() -> None:
    vector = np.array([0.1, -2.5, 3.0e-8, 1.0], dtype=np.float32)
    encoded = encode_vector(vector, "base64")
    assert isinstance(encoded, str)
    raw = base64.b64decode(encoded)
    assert raw == vector.astype("<f4").tobytes()
    # Both decoding paths of openai.lib._parsing._embeddings give back the same floats.
    assert array.array("f", raw).tolist() == vector.tolist()
    assert np.frombuffer(raw, dtype="float32").tolist() == vector.tolist()
    assert decode_base64_vector(encoded).tolist() == vector.tolist()


def test_float_encoding_keeps_every_float32_value() -> None:
    vector = np.array([0.1, -2.5], dtype=np.float32)
    floats = encode_vector(vector, "float")
    assert floats == [float(np.float32(0.1)), -2.5]
    assert np.array(floats, dtype=np.float32).tobytes() == vector.tobytes()
