"""Request bodies parsed as JSON a client cannot turn into a 500.

The standard library parser raises ValueError for an integer of more than 4300 digits and
RecursionError for deep nesting ([[[...]]]); neither is a JSONDecodeError, so webargs let them
through as 500s with a traceback. Here every such body is an ordinary invalid JSON body (400
validation_error), and the bounds are tighter than anything the API needs.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Request
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

MAX_DEPTH = 32  # the deepest body the API takes is 2 ({"name": "..."})
MAX_INTEGER_DIGITS = 20  # any 64-bit integer
_DOC = "(request body)"  # never the body itself; webargs reads an empty doc as "no body"


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ValueError("integer too long")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")  # NaN, Infinity, -Infinity


def _too_deep(value: Any) -> bool:
    """True when arrays and objects nest deeper than MAX_DEPTH (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def loads_strict(raw: bytes | str) -> Any:
    """Parse a JSON body, or raise JSONDecodeError (never anything else, never echoing it)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = json.loads(text, parse_int=_integer, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise json.JSONDecodeError(type(exc).__name__, _DOC, 0) from None
    if _too_deep(value):
        raise json.JSONDecodeError("nested too deeply", _DOC, 0)
    return value


class StrictJsonParser(FlaskParser):
    """webargs' Flask parser, reading JSON bodies with loads_strict."""

    def _raw_load_json(self, req: Request) -> Any:
        """The body as JSON (missing when it is not JSON); bad JSON raises JSONDecodeError."""
        if not is_json_request(req):
            return core.missing
        return loads_strict(req.get_data(cache=True))
