"""Key credit limits must fit the ledger's integer picodollars (found by the API fuzzer:
a limit of 2e15 USD overflowed SQLite's INTEGER and answered 500)."""

from __future__ import annotations

import pytest

from switchyard.errors import InvalidRequest
from switchyard.wire.accounts import CreateKeyRequest, UpdateKeyRequest
from switchyard.wire.codec import decode_request


@pytest.mark.parametrize("kind", [CreateKeyRequest, UpdateKeyRequest])
@pytest.mark.parametrize("limit", ["2166539019029565.0", "1e400", "1000000.000001", "-1"])
def test_out_of_range_limits_are_refused(kind: type, limit: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        decode_request(f'{{"name": "k", "limit": {limit}}}'.encode(), kind)
    assert caught.value.field == "limit"


def test_a_million_dollars_is_still_a_limit() -> None:
    request = decode_request(b'{"name": "k", "limit": 1000000}', CreateKeyRequest)
    assert request.limit == 1_000_000
