"""Inline media as base64 ``data:`` URLs (RFC 2397), read the same way by every adapter.

Clients send images, audio and files as ``data:<type>[;param=value]*;base64,<payload>``;
remote URLs have been inlined into this form by :mod:`switchyard.upstream.fetch` before an
adapter sees them. Each vendor wants the media type and the base64 payload apart, and each
rejects a malformed payload with an error of its own, after the request has been paid for
in latency. Checking here gives the client one clear 400 naming the field instead.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

from switchyard.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class DataUrl:
    media_type: str  # lower-cased; "" when the URL names none
    data: str  # the base64 payload, exactly as sent

    def decoded(self) -> bytes:
        return binascii.a2b_base64(self.data, strict_mode=True)


def is_data_url(url: str) -> bool:
    return url[:5].lower() == "data:"


def parse_data_url(url: str, field: str) -> DataUrl:
    """Split a base64 data: URL, checking that its payload is base64; a 400 naming `field`
    otherwise. Parameters such as ``charset`` or ``name`` are allowed and ignored."""
    if not is_data_url(url):
        raise InvalidRequest(f"`{field}` must be a data: URL", field=field)
    head, sep, data = url[5:].partition(",")
    media_type, *params = head.split(";")
    if not sep or not params or params[-1].strip().lower() != "base64":
        raise InvalidRequest(
            f"`{field}` must be a base64 data: URL (data:<type>;base64,<data>)", field=field
        )
    if not data:
        raise InvalidRequest(f"`{field}` has no data after the comma", field=field)
    try:
        binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error:
        raise InvalidRequest(f"`{field}` is not valid base64", field=field) from None
    return DataUrl(media_type.strip().lower(), data)
