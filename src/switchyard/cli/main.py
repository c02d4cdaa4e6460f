"""``switchyard serve | keys create|list | models``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

import msgspec

from switchyard.catalog.loader import CatalogError
from switchyard.settings import ConfigError, Settings, load_settings
from switchyard.storage.sqlite import MigrationError

SETTINGS_ENV = "SWITCHYARD_RESOLVED_SETTINGS"


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
    serve.add_argument("--workers", type=int, default=1, help="server processes (1)")
    serve.add_argument("--log-level", help="debug, info, warning, error (info)")
    serve.add_argument("--access-log", action="store_true", help="log every request")

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it (shown only once)")
    _common(create)
    create.add_argument("--name", default="cli", help="a name to recognise the key by")
    create.add_argument(
        "--management",
        action="store_true",
        help="a management key (manages keys, cannot call models)",
    )
    create.add_argument("--limit", help="credit limit in USD (default: none)")
    listing = keys_sub.add_parser("list", help="list keys (never their secrets)")
    _common(listing)

    models = sub.add_parser("models", help="list the catalog and which models are available")
    _common(models)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "data_dir": args.data_dir,
        "log_level": getattr(args, "log_level", None),
    }
    return load_settings(args.config, overrides)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
        if args.command == "serve":
            return _serve(settings, args)
        if args.command == "keys":
            return _keys(settings, args)
        return _models(settings)
    except (ConfigError, CatalogError, MigrationError) as exc:
        print(f"switchyard: {exc}", file=sys.stderr)
        return 2


def _keystore(settings: Settings):  # type: ignore[no-untyped-def]
    from switchyard.accounting.keys import KeyStore
    from switchyard.storage.sqlite import SQLiteDatabase

    db = SQLiteDatabase(settings.sqlite_path)
    db.connect_sync()
    store = KeyStore(db)
    store.ensure_account()
    return db, store


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    db, store = _keystore(settings)
    try:
        if args.keys_command == "create":
            limit = None
            if args.limit is not None:
                try:
                    limit = Decimal(args.limit)
                except InvalidOperation:
                    print(f"switchyard: --limit {args.limit!r} is not a number", file=sys.stderr)
                    return 2
            kind = "management" if args.management else "inference"
            secret, record = store.create_key(name=args.name, kind=kind, limit=limit)
            print(secret)
            print(
                f"created {kind} key {record.label} ({record.name}); it is shown only once",
                file=sys.stderr,
            )
        else:
            for record in store.list_keys():
                state = "disabled" if record.disabled else "active"
                print(
                    f"{record.hash[:16]}  {record.label}  {record.kind:<10}  {state:<8}  "
                    f"{record.name}"
                )
    finally:
        db.close()
    return 0


def _models(settings: Settings) -> int:
    from switchyard.server.state import build_state

    state = build_state(settings)
    try:
        for model in state.catalog.models.values():
            endpoints = state.catalog.endpoints_for(model.id)
            available = [e.provider for e in endpoints if e.provider in state.providers]
            missing = [e.provider for e in endpoints if e.provider not in state.providers]
            status = ", ".join(available) if available else "unavailable"
            extra = f" (not configured: {', '.join(missing)})" if missing else ""
            print(f"{model.id:<34} {model.context_length:>8} ctx  {status}{extra}")
    finally:
        state.db.close()
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Fail here, before binding the port, on a bad catalog, config or database.
    from switchyard.server.state import build_state

    state = build_state(settings)
    if state.keys.count_keys() == 0:
        state.keys.ensure_account()
        secret, _ = state.keys.create_key(name="first key")
        print(
            "\nYour first API key (shown only once; `switchyard keys create` makes more):\n"
            f"\n    {secret}\n",
            flush=True,
        )
    available = sorted(m for m in state.catalog.models if state.view.is_available(m))
    print(
        f"Serving {len(available)} models on http://{settings.host}:{settings.port}/api/v1",
        flush=True,
    )
    state.db.close()
    os.environ[SETTINGS_ENV] = msgspec.json.encode(settings).decode()
    uvicorn.run(
        "switchyard.server.factory:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level,
        access_log=args.access_log,
        timeout_graceful_shutdown=30,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
