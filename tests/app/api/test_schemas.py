"""The one non-blank rule: the published JSON Schema pattern and the server-side check agree."""

from __future__ import annotations

import re

import pytest

from app.api.schemas import NON_BLANK_PATTERN, is_blank

# ECMAScript's \s (what a JSON Schema validator applies to the published pattern), not Python's isspace.
BLANK = ["", " ", "\t\n\r\v\f", "\u00a0", "\u3000", "\ufeff", "\u2028\u2029", "\u2000\u200a", "\u202f\u205f"]
NOT_BLANK = ["a", " x ", "\u200b", "\x00", "\x1c", "\x85", "👍", "\ufeffok"]


@pytest.mark.parametrize("text", BLANK)
def test_blank_texts(text: str) -> None:
    assert is_blank(text)
    assert re.search(NON_BLANK_PATTERN, text) is None


@pytest.mark.parametrize("text", NOT_BLANK)
def test_texts_with_content(text: str) -> None:
    assert not is_blank(text)
    assert re.search(NON_BLANK_PATTERN, text) is not None
