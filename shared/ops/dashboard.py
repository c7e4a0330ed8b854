"""The admin dashboard: one static HTML page (`shared/static/dashboard.html`, its CSS and script
inline, nothing fetched from elsewhere) served with a strict Content-Security-Policy that allows
exactly its own inline script and style (by hash) and same-origin API calls."""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from pathlib import Path

import flask

PAGE = Path(__file__).resolve().parent / "static" / "dashboard.html"


def _hashes(html: str, tag: str) -> list[str]:
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.S)
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() + "'"
        for b in blocks
    ]


@functools.cache
def _load() -> tuple[bytes, str]:
    html = PAGE.read_text(encoding="utf-8")
    csp = "; ".join(
        [
            "default-src 'none'",
            "script-src " + " ".join(_hashes(html, "script")),
            "style-src " + " ".join(_hashes(html, "style")),
            "img-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return html.encode(), csp


def page() -> flask.Response:
    body, csp = _load()
    return flask.Response(
        body,
        mimetype="text/html",
        headers={
            "Content-Security-Policy": csp,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )
