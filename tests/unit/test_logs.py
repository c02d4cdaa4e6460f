"""Log lines: JSON or text, stamped with the request id, with secrets masked in both."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchyard.observability.logs import (
    Redactor,
    build_handler,
    resolve_format,
    secret_env_values,
)
from switchyard.observability.request_context import (
    accepted_request_id,
    bind_request_id,
    unbind_request_id,
)
from switchyard.settings import ProviderConfig, Settings

OUR_KEY = "sk-sy-v1-" + "ab12" * 16
PROVIDER_KEY = "sk-proj-Zq8vN3xT7yLk2M9pR4wS6uB1"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


class _Capture:
    def __init__(self, log_format: str, redact: Redactor) -> None:
        self.stream = io.StringIO()
        self.handler = build_handler(self.stream, log_format, redact)
        self.logger = logging.getLogger(f"test.logs.{log_format}")
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(self.handler)

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def close(self) -> None:
        self.logger.removeHandler(self.handler)


@pytest.fixture(params=["json", "text"])
def capture(request: pytest.FixtureRequest) -> Iterator[_Capture]:
    settings = Settings(
        providers={
            "openai": ProviderConfig(api_key=PROVIDER_KEY),
            "amazon-bedrock": ProviderConfig(aws_secret_access_key=AWS_SECRET),
        },
        redis_url="redis://:hunter2hunter2@cache.internal:6379/0",
    )
    found = _Capture(request.param, Redactor(settings.secrets()))
    yield found
    found.close()


def test_json_lines_parse_and_carry_the_request_id_and_extra_fields() -> None:
    found = _Capture("json", Redactor())
    token = bind_request_id("req-42")
    try:
        found.logger.info("served %s", "gen-1", extra={"tokens_prompt": 12})
    finally:
        unbind_request_id(token)
    found.logger.warning("outside any request")
    found.close()
    first, second = (json.loads(line) for line in found.lines())
    assert first["message"] == "served gen-1"
    assert first["request_id"] == "req-42"
    assert first["tokens_prompt"] == 12
    assert first["level"] == "info" and first["logger"] == "test.logs.json"
    assert first["ts"].endswith("+00:00")
    assert "request_id" not in second


def test_json_lines_keep_tracebacks_on_one_line() -> None:
    found = _Capture("json", Redactor())
    try:
        raise ValueError("boom")
    except ValueError:
        found.logger.exception("it failed")
    found.close()
    (line,) = found.lines()
    parsed = json.loads(line)
    assert "ValueError: boom" in parsed["exception"]


def test_text_lines_show_the_request_id() -> None:
    found = _Capture("text", Redactor())
    token = bind_request_id("req-7")
    try:
        found.logger.info("hello")
    finally:
        unbind_request_id(token)
    found.close()
    (line,) = found.lines()
    assert "test.logs.text [req-7]: hello" in line


def test_secrets_never_appear_in_either_format(capture: _Capture) -> None:
    log = capture.logger
    log.info("upstream said: Incorrect API key provided: %s", PROVIDER_KEY)
    log.info("headers: {'authorization': 'Bearer %s'}", OUR_KEY)
    log.info("client sent Authorization: Bearer some-opaque-token-123")
    log.info("bedrock signing with %s", AWS_SECRET)
    log.info("retrying https://user:hunter2hunter2@cache.internal:6379")
    log.info("query had api_key=%s&x=1", "AIzaSyD-1234567890abcdefghijklmnop")
    log.info("our key %s in a message", OUR_KEY)
    log.info("a label is fine: sk-sy-v1-ab1...f00")
    text = capture.stream.getvalue()
    for secret in (
        PROVIDER_KEY,
        OUR_KEY,
        "some-opaque-token-123",
        AWS_SECRET,
        "hunter2hunter2",
        "AIzaSyD-1234567890abcdefghijklmnop",
    ):
        assert secret not in text
    assert "sk-sy-v1-ab1...f00" in text  # labels identify keys without revealing them
    assert text.count("***") >= 7


def test_secrets_in_exceptions_are_masked_too() -> None:
    found = _Capture("json", Redactor([PROVIDER_KEY]))
    try:
        raise RuntimeError(f"401 for key {PROVIDER_KEY}")
    except RuntimeError:
        found.logger.exception("upstream failed")
    found.close()
    assert PROVIDER_KEY not in found.stream.getvalue()


def test_secret_environment_variables_are_collected() -> None:
    environ = {
        "OPENAI_API_KEY": "sk-openai-value",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-value",
        "AWS_SESSION_TOKEN": "aws-token-value",
        "PGPASSWORD": "pg-password-value",
        "HOME": "/root",
        "OPENAI_BASE_URL": "http://example",
    }
    assert sorted(secret_env_values(environ)) == [
        "aws-secret-value",
        "aws-token-value",
        "pg-password-value",
        "sk-openai-value",
    ]


def test_settings_list_their_secrets() -> None:
    settings = Settings(
        providers={"openai": ProviderConfig(api_key="sk-1234567890")},
        database_url="postgresql://switchyard:pg-secret-pw@db:5432/switchyard",
        redis_url="redis://cache:6379/0",
    )
    assert sorted(settings.secrets()) == ["pg-secret-pw", "sk-1234567890"]


def test_auto_format_is_text_on_a_terminal_and_json_otherwise() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert resolve_format("auto", Tty()) == "text"
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("json", Tty()) == "json"
    assert resolve_format("text", io.StringIO()) == "text"


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        (b"abc-123", True),
        (b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", True),
        (b"req_1.2:3/4+5=6@host", True),
        (b"has space", False),
        (b"x" * 129, False),
        (b"evil\nInjected: header", False),
        ("caf\u00e9".encode(), False),
        (b"", False),
        (None, False),
    ],
)
def test_incoming_request_ids_are_kept_only_when_sane(incoming: bytes | None, kept: bool) -> None:
    chosen = accepted_request_id(incoming)
    if kept:
        assert incoming is not None and chosen == incoming.decode()
    else:
        assert len(chosen) == 32 and int(chosen, 16) >= 0


def test_observability_settings_are_validated_and_read_from_the_environment() -> None:
    from switchyard.settings import ConfigError, load_settings

    settings = load_settings(
        environ={
            "SWITCHYARD_LOG_FORMAT": "json",
            "SWITCHYARD_METRICS": "management",
            "SWITCHYARD_OTLP_ENDPOINT": "http://collector:4318",
        }
    )
    assert (settings.log_format, settings.metrics) == ("json", "management")
    assert settings.otlp_endpoint == "http://collector:4318"
    with pytest.raises(ConfigError, match="log_format"):
        load_settings(environ={"SWITCHYARD_LOG_FORMAT": "xml"})
    with pytest.raises(ConfigError, match="metrics"):
        load_settings(environ={"SWITCHYARD_METRICS": "everyone"})


def test_log_lines_survive_a_library_silencing_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from switchyard.observability.logs import configure_logging

    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_fd2 = os.dup(2)
    with (tmp_path / "stderr").open("w+b") as err, open(os.devnull, "wb") as null:
        os.dup2(err.fileno(), 2)
        monkeypatch.setattr(sys, "stderr", open(2, "w", buffering=1, closefd=False))  # noqa: SIM115
        try:
            handler = configure_logging("info", "json", Redactor())
            # What llama.cpp does while it loads a model, in a worker thread, as the event
            # loop goes on logging: point fd 2 at /dev/null for a while.
            os.dup2(null.fileno(), 2)
            logging.getLogger("test.silenced").info("still here")
            os.dup2(err.fileno(), 2)
            handler.close()
        finally:
            os.dup2(saved_fd2, 2)
            os.close(saved_fd2)
            root.handlers[:] = saved_handlers
            root.setLevel(saved_level)
        err.seek(0)
        assert b"still here" in err.read()
