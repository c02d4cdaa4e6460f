"""The one data: URL reader every adapter uses: what it accepts and the 400s it gives."""

from __future__ import annotations

import pytest

from switchyard.errors import InvalidRequest
from switchyard.providers.data_url import is_data_url, parse_data_url

PNG = "iVBORw0KGgo="  # the PNG signature, base64


def test_splits_media_type_and_payload() -> None:
    inline = parse_data_url(f"data:image/png;base64,{PNG}", "f")
    assert (inline.media_type, inline.data) == ("image/png", PNG)
    assert inline.decoded() == b"\x89PNG\r\n\x1a\n"


def test_scheme_type_and_encoding_are_case_insensitive_and_parameters_ignored() -> None:
    inline = parse_data_url(f"DATA:Image/PNG;name=cat.png;BASE64,{PNG}", "f")
    assert inline.media_type == "image/png"
    assert is_data_url("Data:text/plain;base64,aGk=")


def test_a_missing_media_type_is_empty() -> None:
    assert parse_data_url("data:;base64,aGk=", "f").media_type == ""


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://example.com/cat.png", "must be a data: URL"),
        ("data:image/png,rawbytes", "must be a base64 data: URL"),
        (f"data:image/png;base64{PNG}", "must be a base64 data: URL"),
        ("data:image/png;base64,", "no data"),
        ("data:image/png;base64,not base64!", "not valid base64"),
        ("data:image/png;base64,aGk", "not valid base64"),  # bad padding
    ],
)
def test_bad_urls_are_400s_naming_the_field(url: str, says: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_data_url(url, "messages[0].content[1].image_url.url")
    assert says in str(raised.value)
    assert raised.value.field == "messages[0].content[1].image_url.url"
