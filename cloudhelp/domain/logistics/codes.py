"""Tracking codes: 12 digits a USB scanner or a person types, the last a Luhn check digit (a
mistyped digit or two swapped neighbours is caught before any lookup). Items start with 1 to 8,
runs with 9."""

from __future__ import annotations

import re
import secrets
import unicodedata

ITEM_PREFIXES = "12345678"
RUN_PREFIX = "9"
_SEPARATORS = re.compile(r"[\s\-]+")


def luhn_digit(body: str) -> str:
    """The check digit that makes ``body`` + digit pass the Luhn test."""
    total = 0
    for index, char in enumerate(reversed(body)):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    return str((10 - total % 10) % 10)


def valid(code: str) -> bool:
    if len(code) != 12 or not code.isascii() or not code.isdigit():
        return False
    return luhn_digit(code[:-1]) == code[-1]


def new_item_code() -> str:
    body = secrets.choice(ITEM_PREFIXES) + "".join(secrets.choice("0123456789") for _ in range(10))
    return body + luhn_digit(body)


def new_run_code() -> str:
    body = RUN_PREFIX + "".join(secrets.choice("0123456789") for _ in range(10))
    return body + luhn_digit(body)


def is_run(code: str) -> bool:
    return code.startswith(RUN_PREFIX)


def typed(text: str) -> str:
    """A scanned or typed code as stored: full-width digits as ASCII, spaces and dashes gone."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", text))


def grouped(code: str) -> str:
    """The code as printed under the QR: 1234 5678 9012."""
    return " ".join(code[i : i + 4] for i in range(0, len(code), 4))


def new_pickup_code() -> str:
    """The six digits the applicant is given and says at pickup."""
    return "".join(secrets.choice("0123456789") for _ in range(6))
