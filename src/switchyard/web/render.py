"""Templates and the formatting filters they use (prices, token counts, dates)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import jinja2
import msgspec
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

MILLION = Decimal(1_000_000)
THOUSAND = Decimal(1_000)

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("switchyard.web", "templates"),
    autoescape=jinja2.select_autoescape(["html"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)


def per_million(price: Decimal | str | None) -> str:
    """USD per token as dollars per million tokens: ``$2.50``, ``$0.15``, ``Free``."""
    if price is None:
        return "—"
    value = Decimal(price) * MILLION
    if not value:
        return "$0"
    return f"${_trim(value)}"


def per_thousand(price: Decimal | str | None) -> str:
    if price is None or not Decimal(price):
        return "—"
    return f"${_trim(Decimal(price) * THOUSAND)}"


def _trim(value: Decimal) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    # Keep cents visible: $2.50, not $2.5.
    if "." in text and len(text.split(".")[1]) == 1:
        text += "0"
    return text


def compact(number: int | float | None) -> str:
    """128000 -> 128K, 7190000000 -> 7.19B."""
    if number is None:
        return "—"
    value = float(number)
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.3g}" if value != int(value) else str(int(value))


def context(tokens: int | None) -> str:
    """Context windows as vendors name them: 8192 -> 8K (binary), 128000 -> 128K."""
    if tokens is not None and tokens % 1000 and tokens >= 1024 and tokens % 1024 == 0:
        return f"{tokens // 1024}K"
    return compact(tokens)


def grouped(number: int | None) -> str:
    return "—" if number is None else f"{number:,}"


def day(value: dt.date | int | str) -> str:
    """A date as the seeds show it: ``May 13, 2024``."""
    if isinstance(value, int):
        value = dt.datetime.fromtimestamp(value, dt.UTC).date()
    elif isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    return f"{value:%b} {value.day}, {value.year}"


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def tps(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} tok/s"


def to_json(value: Any) -> Markup:
    """Data for a script's JSON block; ``</`` is escaped so it cannot close the script."""
    text = msgspec.json.encode(value).decode().replace("</", "<\\/")
    # Safe as JSON inside <script type="application/json">: "</" cannot end the element.
    return Markup(text)


_env.filters.update(
    per_million=per_million,
    per_thousand=per_thousand,
    compact=compact,
    context=context,
    grouped=grouped,
    day=day,
    seconds=seconds,
    percent=percent,
    tps=tps,
    to_json=to_json,
)


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    page = _env.get_template(template).render(
        request=request, path=request.url.path, signed_in=context.pop("signed_in", None), **context
    )
    return HTMLResponse(
        page,
        status_code=status_code,
        headers={
            # Everything the pages load is ours: no inline script, no third-party origin.
            "Content-Security-Policy": (
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
                " img-src 'self' data:; connect-src 'self'; frame-ancestors 'none';"
                " base-uri 'none'; form-action 'self'"
            ),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )
