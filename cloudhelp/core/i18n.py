"""Message catalogs (web/i18n/*.json): zh-CN first, English selectable."""

from __future__ import annotations

import json
from functools import cache

from aiohttp import web

from web import I18N_DIR

DEFAULT_LANG = "zh-CN"
LANGS = ("zh-CN", "en")
LANG_COOKIE = "lang"


@cache
def catalog(lang: str) -> dict[str, str]:
    texts: dict[str, str] = json.loads((I18N_DIR / f"{lang}.json").read_text(encoding="utf-8"))
    return texts


def translate(lang: str, key: str, **values: object) -> str:
    """The message for ``key`` in ``lang`` (falling back to zh-CN), with ``{name}`` filled in."""
    text = catalog(lang).get(key) or catalog(DEFAULT_LANG).get(key, key)
    return text.format(**values) if values else text


def request_lang(request: web.Request) -> str:
    """?lang= wins, then the cookie, then zh-CN."""
    for value in (request.query.get("lang"), request.cookies.get(LANG_COOKIE)):
        if value in LANGS:
            return value
    return DEFAULT_LANG
