"""Validation errors for people: each names the field and says what is expected.

Pydantic's own messages describe its internals: `{"text": 5}` fails every member of the field's
union and reads `text.str: Input should be a valid string; text.none: Input should be None`. The
request models therefore check the shape of their fields themselves (`check_texts`,
`reject_unknown_fields`) and raise `field_error`s whose message is already complete
(`texts[2] must be a string, not a number`); `summarise_validation` turns whatever else pydantic
reports into the same style. The error types (`invalid_request`, `invalid_json`) stay as they were.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic_core import PydanticCustomError

from app.errors import InvalidJson, InvalidRequest

FIELD_ERROR = "field_error"  # a pydantic error type whose message is complete, field name included
_MAX_PARTS = 5
_MAX_NAMES = 3
# Union members and wrapper schemas appear in pydantic's error locations ("text", "str"): not fields.
_TAGS = frozenset({"str", "int", "float", "bool", "none", "bytes"})
_SHOULD = re.compile(r"^(Input|String|List|Value|Dictionary|Object) should ")


def json_kind(value: Any) -> str:
    """What a client sent, in JSON's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def field_error(message: str) -> PydanticCustomError:
    # The message travels as context, so braces a client put in a field name are not a template.
    return PydanticCustomError(FIELD_ERROR, "{message}", {"message": message})


def check_texts(name: str, value: Any, one: bool, many: bool) -> Any:
    """`value` unchanged if it is a string (`one`) or a list of strings (`many`); else a field_error."""
    if one and isinstance(value, str):
        return value
    if many and isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise field_error(f"{name}[{i}] must be a string, not {json_kind(item)}")
        return value
    expected = "a string or a list of strings" if one and many else "a string" if one else "a list of strings"
    raise field_error(f"{name} must be {expected}, not {json_kind(value)}")


def reject_unknown_fields(data: Any, known: Iterable[str]) -> None:
    """One error naming the unknown fields (a few of them) and every accepted one."""
    if not isinstance(data, Mapping):
        return  # pydantic says the body must be an object
    accepted = list(known)
    unknown = [str(key) for key in data if key not in accepted]
    if not unknown:
        return
    names = ", ".join(repr(name[:40]) for name in unknown[:_MAX_NAMES])
    more = f" (+{len(unknown) - _MAX_NAMES} more)" if len(unknown) > _MAX_NAMES else ""
    noun = "field" if len(unknown) == 1 else "fields"
    raise field_error(f"unknown {noun} {names}{more}; the accepted fields are {', '.join(accepted)}")


def _path(loc: Iterable[Any]) -> str:
    """`("body", "texts", "list[str]", 2)` -> `texts[2]`; "" for the body itself."""
    parts = [p for p in loc if p != "body"]
    out = ""
    for i, part in enumerate(parts):
        if isinstance(part, int):
            out += f"[{part}]"
        elif i == 0 or not (part in _TAGS or "[" in part or "-" in part):
            out += f".{part}" if out else str(part)
    return out


def _predicate(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    if kind in ("bool_type", "bool_parsing"):
        return "must be true or false"
    if kind in ("float_type", "float_parsing", "int_type", "int_parsing", "int_from_float"):
        return "must be a number" if kind.startswith("float") else "must be a whole number"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not an accepted field"
    if kind == "value_error":
        return f"is invalid: {err.get('ctx', {}).get('error', err.get('msg', ''))}"
    message = str(err.get("msg", "is invalid"))
    return _SHOULD.sub("must ", message) if _SHOULD.match(message) else f"is invalid: {message}"


def summarise_validation(errors: list[dict[str, Any]]) -> tuple[str, str]:
    """One readable line from pydantic's error list, and the error type (invalid_json or invalid_request)."""
    for err in errors:
        if err.get("type") == "json_invalid":
            reason = err.get("ctx", {}).get("error")
            loc = err.get("loc", ())
            at = f" at character {loc[-1]}" if loc and isinstance(loc[-1], int) else ""
            return f"request body is not valid JSON{f' ({reason}{at})' if reason else ''}", InvalidJson.error_type
    grouped: dict[str, list[str]] = {}
    complete: list[str] = []
    for err in errors:
        kind = err.get("type")
        path = _path(err.get("loc", ()))
        if kind == FIELD_ERROR:
            complete.append(str(err.get("msg")))
        elif not path and kind in ("model_type", "model_attributes_type", "dict_type"):
            complete.append(f"the request body must be a JSON object, not {json_kind(err.get('input'))}")
        elif not path and kind == "value_error":
            complete.append(str(err.get("ctx", {}).get("error", err.get("msg"))))
        elif kind != "none_required":  # the "absent" member of an optional field's union: never the point
            grouped.setdefault(path or "the request body", []).append(_predicate(err))
    parts = list(dict.fromkeys(complete))
    parts += [f"{path} {' or '.join(dict.fromkeys(predicates))}" for path, predicates in grouped.items()]
    if not parts:  # only "absent" complaints: the value was null where null is not allowed
        parts = [f"{_path(err.get('loc', ())) or 'the request body'} must not be null" for err in errors[:1]]
    more = f" (+{len(parts) - _MAX_PARTS} more)" if len(parts) > _MAX_PARTS else ""
    return "; ".join(parts[:_MAX_PARTS]) + more, InvalidRequest.error_type
