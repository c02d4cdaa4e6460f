"""One place that turns bytes into wire types and back, and decode failures into errors.

msgspec validates while it decodes, so a request is parsed and checked in one pass. Its
messages end in a JSON path (``- at `$.messages[0].content```); we keep the message and lift
the path into ``metadata.field`` so clients can point at the offending field.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from switchyard.errors import InvalidRequest

T = TypeVar("T")

# Decimals are money: emit them as JSON numbers with every digit kept (never via float).
encoder = msgspec.json.Encoder(decimal_format="number")
encode = encoder.encode

_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def decoder_for(kind: type[T]) -> msgspec.json.Decoder[T]:
    dec = _decoders.get(kind)
    if dec is None:
        dec = _decoders[kind] = msgspec.json.Decoder(kind)
    return dec


def decode_request(body: bytes, kind: type[T]) -> T:
    """Decode and validate a client request body, raising :class:`InvalidRequest`."""
    if not body.strip():
        raise InvalidRequest("Request body is empty; expected a JSON object")
    try:
        return decoder_for(kind).decode(body)
    except msgspec.ValidationError as exc:
        raise _validation_error(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"Malformed JSON in request body: {exc}") from None


def _validation_error(text: str) -> InvalidRequest:
    match = _PATH.search(text)
    path = match.group("path") if match else ""
    detail = text[: match.start()] if match else text
    if detail.startswith("Object missing required field"):
        # msgspec reports the parent's path for a missing field; name the field itself.
        missing = detail.split("`")[1]
        path = f"{path}.{missing}" if path else missing
        return InvalidRequest(f"Missing required field `{path}`", field=path)
    if not path:
        return InvalidRequest(f"Invalid request: {detail}")
    return InvalidRequest(f"Invalid value for `{path}`: {detail}", field=path)
