"""``switchyard serve | keys create|list|disable | credits add | accounts create|list | models
| providers set-key|new-master-key``."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import TypeVar

import msgspec

from switchyard.accounting.keys import DEFAULT_ACCOUNT, KeyKind, KeyStore, new_account_id
from switchyard.accounting.money import from_pico
from switchyard.catalog.loader import CatalogError
from switchyard.errors import SwitchyardError
from switchyard.settings import ConfigError, Settings, load_settings
from switchyard.storage import Database, MigrationError, StorageError, open_database
from switchyard.storage.credentials import (
    MASTER_KEY_ENV,
    CredentialError,
    CredentialStore,
    master_key_from,
    new_master_key,
    seal,
)

SETTINGS_ENV = "SWITCHYARD_RESOLVED_SETTINGS"
# Seconds uvicorn waits after the grace period before cancelling what is left.
SHUTDOWN_BACKSTOP = 5
T = TypeVar("T")


class UsageError(Exception):
    pass


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (default: <data-dir>/switchyard.toml)")
    parser.add_argument("--data-dir", help="where the database and config live (~/.switchyard)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchyard", description="Self-hosted LLM router")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server")
    _common(serve)
    serve.add_argument("--host", help="interface to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (8080)")
    serve.add_argument("--log-level", help="debug, info, warning, error (info)")
    serve.add_argument(
        "--log-format",
        choices=["auto", "json", "text"],
        help="log lines as JSON or text (auto: text on a terminal, else JSON)",
    )
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument(
        "--workers",
        type=int,
        help="server processes sharing the port (1); more than one needs redis_url",
    )

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it (shown only once)")
    _common(create)
    create.add_argument("--name", default="cli", help="a name to recognise the key by")
    create.add_argument("--account", default=DEFAULT_ACCOUNT, help="account id (default)")
    create.add_argument(
        "--management",
        action="store_true",
        help="a management key (manages keys, cannot call models)",
    )
    create.add_argument("--limit", help="credit limit in USD (default: none)")
    create.add_argument(
        "--limit-reset",
        choices=["daily", "weekly", "monthly"],
        help="reset the limit every day, week (from Monday) or month, UTC",
    )
    listing = keys_sub.add_parser("list", help="list keys (never their secrets)")
    _common(listing)
    listing.add_argument("--account", help="only this account's keys")
    disable = keys_sub.add_parser("disable", help="disable a key by its hash")
    _common(disable)
    disable.add_argument("hash", help="the key's hash (from `keys list`)")

    credits = sub.add_parser("credits", help="account credits")
    credits_sub = credits.add_subparsers(dest="action", required=True)
    add = credits_sub.add_parser("add", help="add USD credits to an account")
    _common(add)
    add.add_argument("amount", help="USD, e.g. 25 or 0.50")
    add.add_argument("--account", default=DEFAULT_ACCOUNT, help="account id (default)")
    add.add_argument("--note", help="why, for the record")

    accounts = sub.add_parser("accounts", help="accounts (a team or customer each)")
    accounts_sub = accounts.add_subparsers(dest="action", required=True)
    new = accounts_sub.add_parser("create", help="create an account and its management key")
    _common(new)
    new.add_argument("name")
    new.add_argument("--credits", help="initial USD credits")
    accounts_list = accounts_sub.add_parser("list", help="list accounts with credits and usage")
    _common(accounts_list)

    models = sub.add_parser("models", help="list the catalog and which models are available")
    _common(models)

    providers = sub.add_parser("providers", help="provider credentials kept in the database")
    providers_sub = providers.add_subparsers(dest="action", required=True)
    set_key = providers_sub.add_parser(
        "set-key",
        help=f"store a provider's API key, read from stdin, encrypted with {MASTER_KEY_ENV}",
    )
    _common(set_key)
    set_key.add_argument("slug", help="the provider's catalog slug, e.g. openai")
    providers_sub.add_parser("new-master-key", help=f"print a fresh value for {MASTER_KEY_ENV}")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "data_dir": args.data_dir,
        "log_level": getattr(args, "log_level", None),
        "workers": getattr(args, "workers", None),
        "log_format": getattr(args, "log_format", None),
        "access_log": True if getattr(args, "access_log", False) else None,
    }
    return load_settings(args.config, overrides)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
        if args.command == "serve":
            return _serve(settings, args)
        if args.command == "models":
            return _models(settings)
        if args.command == "providers":
            return _providers(settings, args)
        handler = {"keys": _keys, "credits": _credits, "accounts": _accounts}[args.command]
        return _with_store(settings, lambda store: handler(store, args))
    except (
        ConfigError,
        CatalogError,
        MigrationError,
        StorageError,
        UsageError,
        CredentialError,
    ) as exc:
        print(f"switchyard: {exc}", file=sys.stderr)
        return 2
    except SwitchyardError as exc:
        print(f"switchyard: {exc.message}", file=sys.stderr)
        return 1


def _providers(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "new-master-key":
        print(new_master_key())
        return 0
    master = master_key_from(os.environ)
    if master is None:
        raise UsageError(
            f"{MASTER_KEY_ENV} is not set; refusing to store a provider key unencrypted "
            "(make one with `switchyard providers new-master-key`)"
        )
    from pathlib import Path

    from switchyard.catalog import load_catalog

    catalog = load_catalog([Path(p) for p in settings.catalog_files], settings.catalog_extra())
    if args.slug not in catalog.providers:
        raise UsageError(f"no provider {args.slug!r} in the catalog")
    # From stdin, never the command line, where other users see it in the process list.
    if sys.stdin.isatty():
        import getpass

        api_key = getpass.getpass(f"API key for {args.slug}: ")
    else:
        api_key = sys.stdin.readline()
    api_key = api_key.strip()
    if not api_key:
        raise UsageError("no API key given on stdin")
    sealed = seal(master, args.slug, api_key)

    async def run() -> int:
        db: Database = open_database(settings.database_url, settings.data_path)
        await db.connect()
        try:
            await CredentialStore(db).put(args.slug, sealed)
        finally:
            await db.close()
        return 0

    asyncio.run(run())
    print(f"stored an encrypted API key for {args.slug}", file=sys.stderr)
    return 0


def _with_store(settings: Settings, fn: Callable[[KeyStore], Awaitable[int]]) -> int:
    async def run() -> int:
        db: Database = open_database(settings.database_url, settings.data_path)
        await db.connect()
        try:
            store = KeyStore(db)
            await store.ensure_account()
            return await fn(store)
        finally:
            await db.close()

    return asyncio.run(run())


def _usd(raw: str, what: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise UsageError(f"{what} {raw!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise UsageError(f"{what} must be a non-negative number")
    return value


async def _keys(store: KeyStore, args: argparse.Namespace) -> int:
    if args.action == "create":
        if await store.account(args.account) is None:
            raise UsageError(f"no account {args.account!r}; see `switchyard accounts list`")
        limit = _usd(args.limit, "--limit") if args.limit is not None else None
        kind: KeyKind = "management" if args.management else "inference"
        secret, record = await store.create_key(
            name=args.name,
            account_id=args.account,
            kind=kind,
            limit=limit,
            limit_reset=args.limit_reset,
        )
        print(secret)
        print(
            f"created {kind} key {record.label} ({record.name}); it is shown only once",
            file=sys.stderr,
        )
    elif args.action == "list":
        for record in await store.list_keys(args.account):
            state = "disabled" if record.disabled else "active"
            cap = f"limit ${record.limit}" if record.limit is not None else "no limit"
            print(
                f"{record.hash}  {record.label}  {record.kind:<10}  {state:<8}  "
                f"{record.account_id}  {cap}  {record.name}"
            )
    else:
        record = await store.update_key(args.hash, {"disabled": True})
        print(f"disabled {record.label} ({record.name})")
    return 0


async def _credits(store: KeyStore, args: argparse.Namespace) -> int:
    account = await store.add_credits(args.account, _usd(args.amount, "amount"), args.note)
    print(
        f"{account.id}: credits ${from_pico(account.total_credits)}, "
        f"used ${from_pico(account.total_usage)}"
    )
    return 0


async def _accounts(store: KeyStore, args: argparse.Namespace) -> int:
    if args.action == "create":
        account_id = new_account_id()
        await store.ensure_account(account_id, args.name, enforce_balance=True)
        if args.credits is not None:
            await store.add_credits(account_id, _usd(args.credits, "--credits"), "initial")
        secret, _ = await store.create_key(
            name=f"{args.name} management", account_id=account_id, kind="management"
        )
        print(f"account {account_id}", file=sys.stderr)
        print(secret)
        print("that is the account's management key; it is shown only once", file=sys.stderr)
    else:
        for account in await store.accounts():
            enforced = "" if account.enforce_balance else "  (operator: balance not enforced)"
            print(
                f"{account.id}  {account.name}  credits ${from_pico(account.total_credits)}"
                f"  used ${from_pico(account.total_usage)}{enforced}"
            )
    return 0


def _models(settings: Settings) -> int:
    from pathlib import Path

    from switchyard.catalog import load_catalog
    from switchyard.providers.registry import build_embedders, build_providers
    from switchyard.upstream.client import UpstreamClient

    catalog = load_catalog([Path(p) for p in settings.catalog_files], settings.catalog_extra())
    client = UpstreamClient()
    chat = build_providers(catalog, settings, client, os.environ)
    embedders = build_embedders(catalog, settings, client, os.environ)
    for model in catalog.models.values():
        providers = embedders if "embeddings" in model.architecture.output_modalities else chat
        endpoints = catalog.endpoints_for(model.id)
        available = [e.provider for e in endpoints if e.provider in providers]
        missing = [e.provider for e in endpoints if e.provider not in providers]
        status = ", ".join(available) if available else "unavailable"
        extra = f" (not configured: {', '.join(missing)})" if missing else ""
        print(f"{model.id:<34} {model.context_length:>8} ctx  {status}{extra}")
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from switchyard.server.factory import configure_logging

    if settings.workers > 1 and not settings.redis_url:
        raise UsageError(
            f"--workers {settings.workers} needs redis_url: credit reservations, rate limits"
            " and circuit breakers live in one process otherwise, so each worker would enforce"
            " its own. Set redis_url (or SWITCHYARD_REDIS_URL), or run one worker."
        )
    configure_logging(settings)

    async def first_run() -> None:
        # Fail here, before binding the port, on a bad catalog, config or database.
        from switchyard.server.state import build_state

        state = await build_state(settings)
        try:
            if await state.keys.count_keys() == 0:
                await state.keys.ensure_account()
                secret, _ = await state.keys.create_key(name="first key")
                print(
                    "\nYour first API key (shown only once; `switchyard keys create` makes"
                    f" more):\n\n    {secret}\n",
                    flush=True,
                )
            models = [m for m in state.catalog.models if state.view.is_available(m)]
            workers = f" ({settings.workers} workers)" if settings.workers > 1 else ""
            print(
                f"Serving {len(models)} models on http://{settings.host}:{settings.port}/api/v1"
                f"{workers}",
                flush=True,
            )
        finally:
            await state.db.close()

    asyncio.run(first_run())
    os.environ[SETTINGS_ENV] = msgspec.json.encode(settings).decode()
    metrics_dir = _metrics_dir_for_workers(settings.workers)
    # uvicorn re-raises the signal that stopped it once it is done; with the default action
    # that would kill the process after a clean shutdown. A stop we asked for exits 0 (and
    # so does one that arrives before uvicorn has installed its own handlers).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    try:
        uvicorn.run(
            "switchyard.server.factory:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            loop="uvloop",
            http="httptools",
            log_level=settings.log_level,
            log_config=None,  # uvicorn's loggers propagate to ours: one format, request ids
            access_log=settings.access_log,
            # The app ends streams itself when the grace period is over (switchyard.shutdown);
            # uvicorn's cancellation is only the backstop for whatever still hangs after that.
            timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) + SHUTDOWN_BACKSTOP,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _metrics_dir_for_workers(workers: int) -> str | None:
    """With several workers, a fresh directory where they all keep their metrics (see
    observability/metrics.py), unless the operator chose one; None with one worker."""
    from switchyard.observability.metrics import MULTIPROCESS_ENV

    if workers <= 1 or os.environ.get(MULTIPROCESS_ENV):
        return None
    made = tempfile.mkdtemp(prefix="switchyard-metrics-")
    os.environ[MULTIPROCESS_ENV] = made  # inherited by the workers uvicorn spawns
    return made


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
