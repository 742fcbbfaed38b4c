"""The one JSON loader for text that comes from outside: WebSocket frames and HTTP bodies.

``json.loads`` alone accepts what a server must not: nesting deep enough to raise RecursionError
(a 60 KB ``[[[…]]]``), ``NaN``/``Infinity`` (and ``1e999``, which becomes infinity) that browsers'
``JSON.parse`` rejects when relayed, and integers of any size, which overflow database columns
further on, and the NUL character (``\u0000``), which PostgreSQL cannot store in text.
:func:`loads` refuses all of these with :class:`JSONRefused` (a ValueError), so callers answer
them as they answer any text that is not JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
_INT_MAX_DIGITS = len(str(INT_MAX)) + 1  # longer digit strings are refused before int()


class JSONRefused(ValueError):
    """Text that is JSON but not acceptable here; ``str()`` says why, for the sender."""


def _refuse_constant(name: str) -> Any:
    raise JSONRefused(f"{name} is not a JSON number; send a finite number.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONRefused(f"The number {text[:40]} is too large.")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > _INT_MAX_DIGITS or not INT_MIN <= (value := int(text)) <= INT_MAX:
        raise JSONRefused(f"The whole number {text[:40]}… does not fit in 64 bits.")
    return value


# One decoder for every call: ``json.loads`` with hooks builds a new one each time, which cost
# as much as parsing a chat line.
_DECODER = json.JSONDecoder(
    parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int
)


def depth_of(value: Any, stop_above: int = MAX_DEPTH) -> int:
    """How deeply lists and objects nest in ``value`` (a scalar is 0), without recursion;
    counting stops once the depth passes ``stop_above``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > stop_above:
            return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``text`` as JSON, refusing deep nesting, non-finite numbers and huge integers.

    Raises ValueError (json.JSONDecodeError for text that is not JSON, JSONRefused otherwise).
    """
    try:
        # Bytes are read as json.loads reads them (UTF-8, -16 or -32).
        if isinstance(text, bytes):
            text = text.decode(json.detect_encoding(text), "surrogatepass")
        value = _DECODER.decode(text)
    except RecursionError:
        raise JSONRefused(f"The JSON nests more than {max_depth} levels deep.") from None
    # The depth can only exceed the number of opening brackets: count those first (C speed),
    # so the ordinary small message is never walked.
    brackets = text.count("[") + text.count("{")
    if brackets > max_depth and depth_of(value, max_depth) > max_depth:
        raise JSONRefused(f"The JSON nests more than {max_depth} levels deep.")
    # JSON can only write NUL as the escape \u0000: look for it (C speed) before walking.
    if "\\u0000" in text and _has_nul(value):
        raise JSONRefused("Text may not contain the NUL character (U+0000).")
    return value


def _has_nul(value: Any) -> bool:
    """Whether a string anywhere in ``value`` (keys too) holds U+0000, without recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
