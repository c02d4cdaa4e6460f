"""Handlers for /key, /keys, /credits, /generation and /activity."""

from __future__ import annotations

import datetime as dt
import re

from msgspec import UNSET
from starlette.requests import Request
from starlette.responses import Response

from switchyard.accounting import views
from switchyard.accounting.keys import KeyRecord
from switchyard.accounting.money import from_pico
from switchyard.errors import InvalidRequest, NotFound
from switchyard.server.responses import JSONBytes, read_body
from switchyard.server.state import AppState, state_of
from switchyard.wire.accounts import (
    ActivityEnvelope,
    CreatedKeyEnvelope,
    CreateKeyRequest,
    Credits,
    CreditsEnvelope,
    CurrentKeyEnvelope,
    Deleted,
    GenerationEnvelope,
    KeyEnvelope,
    KeysEnvelope,
    UpdateKeyRequest,
)
from switchyard.wire.codec import decode_request, encode

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HASH = re.compile(r"^[0-9a-f]{64}$")


async def _managed_key(request: Request, state: AppState, manager: KeyRecord) -> KeyRecord:
    key_hash = request.path_params["hash"]
    key = await state.keys.get(key_hash) if _HASH.match(key_hash) else None
    if key is None or key.account_id != manager.account_id:
        raise NotFound(f"Key {key_hash} not found")
    return key


async def current_key(request: Request) -> Response:
    state = state_of(request)
    key = await state.keys.authenticate(request.headers.get("authorization"))
    data = await views.current_key_data(key, state.ledger)
    return JSONBytes(encode(CurrentKeyEnvelope(data=data)))


async def list_keys(request: Request) -> Response:
    state = state_of(request)
    manager = await state.keys.management_key(request.headers.get("authorization"))
    include_disabled = request.query_params.get("include_disabled", "false").lower() == "true"
    offset = _int_param(request, "offset", 0)
    keys = await state.keys.list_keys(
        manager.account_id, include_disabled=include_disabled, offset=offset
    )
    data = [await views.key_data(k, state.ledger) for k in keys]
    return JSONBytes(encode(KeysEnvelope(data=data)))


async def create_key(request: Request) -> Response:
    state = state_of(request)
    manager = await state.keys.management_key(request.headers.get("authorization"))
    body = decode_request(await read_body(request, state.settings.max_body_bytes), CreateKeyRequest)
    if body.expires_at is not None and _aware(body.expires_at) <= dt.datetime.now(dt.UTC):
        raise InvalidRequest("`expires_at` must be in the future", field="expires_at")
    secret, record = await state.keys.create_key(
        name=body.name,
        account_id=manager.account_id,
        limit=body.limit,
        limit_reset=body.limit_reset,
        include_byok_in_limit=body.include_byok_in_limit,
        expires_at=_aware(body.expires_at) if body.expires_at else None,
    )
    data = await views.key_data(record, state.ledger)
    return JSONBytes(encode(CreatedKeyEnvelope(data=data, key=secret)), status_code=201)


async def get_key(request: Request) -> Response:
    state = state_of(request)
    manager = await state.keys.management_key(request.headers.get("authorization"))
    key = await _managed_key(request, state, manager)
    return JSONBytes(encode(KeyEnvelope(data=await views.key_data(key, state.ledger))))


async def update_key(request: Request) -> Response:
    state = state_of(request)
    manager = await state.keys.management_key(request.headers.get("authorization"))
    key = await _managed_key(request, state, manager)
    body = decode_request(await read_body(request, state.settings.max_body_bytes), UpdateKeyRequest)
    changes = {
        name: getattr(body, name)
        for name in body.__struct_fields__
        if getattr(body, name) is not UNSET
    }
    if changes:
        key = await state.keys.update_key(key.hash, changes)
    return JSONBytes(encode(KeyEnvelope(data=await views.key_data(key, state.ledger))))


async def delete_key(request: Request) -> Response:
    state = state_of(request)
    manager = await state.keys.management_key(request.headers.get("authorization"))
    key = await _managed_key(request, state, manager)
    if key.hash == manager.hash:
        raise InvalidRequest("A management key cannot delete itself", field="hash")
    await state.keys.delete_key(key.hash)
    state.ledger.forget(key.hash)
    return JSONBytes(encode(Deleted(deleted=True)))


async def credits(request: Request) -> Response:
    state = state_of(request)
    manager = await state.keys.management_key(request.headers.get("authorization"))
    balance = await state.ledger.balance(manager.account_id)
    assert balance is not None
    data = Credits(total_credits=from_pico(balance.credits), total_usage=from_pico(balance.usage))
    return JSONBytes(encode(CreditsEnvelope(data=data)))


async def generation(request: Request) -> Response:
    state = state_of(request)
    key = await state.keys.authenticate(request.headers.get("authorization"))
    generation_id = request.query_params.get("id")
    if not generation_id:
        raise InvalidRequest("Missing required query parameter `id`", field="id")
    record = state.writer.pending(generation_id) or await views.load_generation(
        state.db, generation_id
    )
    # A management key sees its account's generations; an inference key only its own.
    visible = record is not None and (
        record.key_hash == key.hash
        or (key.kind == "management" and record.account_id == key.account_id)
    )
    if record is None or not visible:
        raise NotFound(f"Generation {generation_id} not found")
    return JSONBytes(encode(GenerationEnvelope(data=views.generation_data(record))))


async def activity(request: Request) -> Response:
    state = state_of(request)
    manager = await state.keys.management_key(request.headers.get("authorization"))
    day = request.query_params.get("date")
    if day is not None and not _DATE.match(day):
        raise InvalidRequest("`date` must be YYYY-MM-DD", field="date")
    key_hash = request.query_params.get("api_key_hash")
    if key_hash is not None and not _HASH.match(key_hash):
        raise InvalidRequest("`api_key_hash` must be a key hash", field="api_key_hash")
    await state.writer.flush()  # include everything acknowledged so far
    items = await views.activity(state.db, manager.account_id, key_hash, day)
    return JSONBytes(encode(ActivityEnvelope(data=items)))


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise InvalidRequest(f"`{name}` must be a non-negative integer", field=name)
    return int(raw)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
