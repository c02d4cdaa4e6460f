"""Process logging: one line per record, as JSON or text, with the request id, secrets masked.

JSON lines carry ``ts``, ``level``, ``logger``, ``message``, ``request_id`` (when emitted
while serving a request), ``exception`` (a traceback, when there is one) and any fields given
with ``extra=``. Text lines carry the same facts for a human at a terminal.

Every line passes through :class:`Redactor` after it is formatted, whatever its source
(our code, uvicorn, a library): known secrets from the configuration and environment, our
own API keys, bearer tokens and passwords in URLs are masked. Code should not log secrets in
the first place; this is the net under it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TextIO

import msgspec

from switchyard.observability.request_context import current_request_id

LogFormat = Literal["json", "text"]

MASK = "***"
# Shorter values are not secrets worth masking, and masking them would mangle ordinary text.
_MIN_SECRET_LENGTH = 8


# Secrets recognisable by their shape, wherever they come from: (a substring the line must
# contain, lower-cased, for the pattern to be worth running; the pattern, whose first group is
# kept). The substring test skips the regular expressions for almost every line.
def _field(names: str) -> re.Pattern[str]:
    """``name=value``, ``"name": "value"``, ``name: value``: keep the name, mask the value."""
    return re.compile(rf"(?i)((?:{names})[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}}&]+")


_SHAPES = (
    ("sk-sy-v1-", re.compile(r"(sk-sy-v1-)[0-9A-Za-z]{6,}")),  # our keys (labels keep 3)
    ("bearer", re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+")),
    ("key", _field(r"api[_-]?key|x-goog-api-key")),
    ("secret", _field(r"secret[_-]?access[_-]?key|client[_-]?secret")),
    ("password", _field("password")),
    ("://", re.compile(r"(://[^/\s:@]*:)[^@\s/]+(?=@)")),  # a password in a URL
)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "rid",
    "color_message",  # uvicorn's message again, with terminal colour codes
}


class Redactor:
    """Masks known secret values and secret-shaped strings in a formatted line."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        known = {s for s in secrets if s and len(s) >= _MIN_SECRET_LENGTH}
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted(known, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        lowered = text.lower()
        for trigger, pattern in _SHAPES:
            if trigger in lowered:
                text = pattern.sub(_KEEP_PREFIX, text)
        return text


_KEEP_PREFIX = r"\1" + MASK


class _RequestIdFilter(logging.Filter):
    """Stamps the current request id on each record, in the thread that emits it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact
        self._encoder = msgspec.json.Encoder()

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            line["request_id"] = request_id
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_"):
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        try:
            encoded = self._encoder.encode(line)
        except (TypeError, ValueError):  # an ``extra`` value JSON cannot hold
            encoded = self._encoder.encode({k: _plain(v) for k, v in line.items()})
        return self._redact(encoded.decode())


def _plain(value: object) -> object:
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


class TextFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        # The process id tells workers apart (serve --workers N).
        super().__init__("%(asctime)s [%(process)d] %(levelname)s %(name)s%(rid)s: %(message)s")
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.rid = f" [{request_id}]" if request_id else ""
        return self._redact(super().format(record))


def resolve_format(setting: str, stream: TextIO) -> LogFormat:
    """``auto``: text for a person at a terminal, JSON for everything else (files, collectors)."""
    if setting == "auto":
        return "text" if stream.isatty() else "json"
    return "json" if setting == "json" else "text"


def build_handler(stream: TextIO, log_format: str, redact: Redactor) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.addFilter(_RequestIdFilter())
    fmt = resolve_format(log_format, stream)
    handler.setFormatter(JsonFormatter(redact) if fmt == "json" else TextFormatter(redact))
    return handler


def _own_stderr() -> TextIO:
    """Standard error on a file descriptor of our own. Native libraries silence theirs by
    pointing fd 2 at /dev/null for a while (llama.cpp while it loads a model or compiles a
    grammar, in a worker thread); log lines written meanwhile from any thread would vanish."""
    try:
        fd = os.dup(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):  # no real stderr (embedded, tests)
        return sys.stderr
    return os.fdopen(fd, "w", buffering=1, encoding="utf-8", errors="backslashreplace")


def configure_logging(
    level: str, log_format: str, redact: Redactor, stream: TextIO | None = None
) -> logging.Handler:
    """Send every logger's records (ours, uvicorn's, libraries') to one handler on ``stream``
    (default: a private copy of standard error)."""
    handler = build_handler(stream if stream is not None else _own_stderr(), log_format, redact)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


# Environment variables whose values are credentials: provider SDKs' API keys
# (OPENAI_API_KEY, GEMINI_API_KEY, ...), AWS secrets and session tokens, passwords.
_SECRET_ENV = re.compile(r"(API_KEY|_SECRET|SECRET_ACCESS_KEY|_TOKEN|PASSWORD)$", re.IGNORECASE)


def secret_env_values(environ: Mapping[str, str]) -> list[str]:
    return [value for name, value in environ.items() if value and _SECRET_ENV.search(name)]
