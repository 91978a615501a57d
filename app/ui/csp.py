"""Content-Security-Policy of each page: same origin only, no 'unsafe-inline', no 'unsafe-eval'.

The policies were found by loading each page in Chromium and dropping one source at a time until
nothing was left that the page could do without (tests/app/ui/test_browser.py keeps them honest:
it fails on any CSP violation).
"""

from __future__ import annotations

import base64
import hashlib
import re

# Every page: nothing from anywhere but this origin, no plugins, no framing, no <base> hijack,
# forms post only here.
_BASE = (
    "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
    "connect-src 'self'; img-src 'self' data:"
)

PLAYGROUND = _BASE + "; script-src 'self'; style-src 'self'"

# ReDoc 2.5.x creates two <style> elements at run time: the empty <style data-styled> that
# styled-components fills through CSSOM (allowed by the hash of the empty string) and
# perfect-scrollbar's fixed CSS. Its search index runs in a blob: web worker.
_REDOC_RUNTIME_STYLES = (
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=' 'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='"
)


def sha256_source(text: str) -> str:
    """A CSP hash source for an inline element's exact text."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def inline_hashes(page: str, tag: str) -> str:
    """Hash sources of every inline `<tag>` (no attributes: `<script src>` is not inline) in `page`."""
    bodies = re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.DOTALL)
    return " ".join(sha256_source(body) for body in bodies)


def swagger_policy(page: str) -> str:
    """Swagger UI as FastAPI writes it: the inline bootstrap script by its hash."""
    return f"{_BASE}; font-src 'self'; script-src 'self' {inline_hashes(page, 'script')}; style-src 'self'"


def redoc_policy(page: str) -> str:
    """ReDoc as FastAPI writes it: its inline <style> by hash, plus ReDoc's own run-time styles."""
    styles = inline_hashes(page, "style")
    return (
        f"{_BASE}; font-src 'self'; script-src 'self'; style-src 'self' {styles} {_REDOC_RUNTIME_STYLES}; "
        "worker-src blob:"
    )
