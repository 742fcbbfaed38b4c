"""Every error code the server can send has text in both message catalogs (``error.<code>``).

Pages show the catalog's text for a code, never the server's English ``message``; this test
reads the code base for the codes, so adding a code without its text fails here.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from cloudhelp.http.errors import HTTP_STATUS_CODES

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [*sorted((ROOT / "cloudhelp").rglob("*.py")), *sorted((ROOT / "signaling").rglob("*.py"))]
CODE = re.compile(r"^[a-z][a-z0-9_]*$")
# Calls that carry an error code, and the position of the code among their arguments.
#   ApiError(status, code, message), _error(ws, code, message), bad_request(message, code=…),
#   Sessions._refuse_while_held(session, code, message),
#   any other …Error(code, message) (SignalingError, AccountError, CaseError, RatingError …).
CODE_POSITION = {"ApiError": 1, "_error": 1, "_refuse_while_held": 1}


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _literals(node: ast.expr | None) -> set[str]:
    """The code(s) an argument can be: a literal, or either branch of ``a if … else b``."""
    if isinstance(node, ast.IfExp):
        return _literals(node.body) | _literals(node.orelse)
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE.match(node.value):
        return {node.value}
    return set()


def codes_in(source: str) -> set[str]:
    """The error codes passed as literals in one module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == "bad_request":
            found |= {c for default in node.args.defaults for c in _literals(default)}
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        keyword = next((k.value for k in node.keywords if k.arg == "code"), None)
        if name == "bad_request":
            candidates = [keyword]
        elif name == "not_found":
            candidates = [ast.Constant("not_found")]
        elif name in CODE_POSITION:
            position = CODE_POSITION[name]
            candidates = [node.args[position] if len(node.args) > position else keyword]
        elif name.endswith("Error") and node.args:
            candidates = [node.args[0]]
        else:
            continue
        found |= {c for candidate in candidates for c in _literals(candidate)}
    return found


def server_error_codes() -> set[str]:
    codes = set(HTTP_STATUS_CODES.values()) | {"bad_request", "internal_error"}
    for path in SOURCES:
        codes |= codes_in(path.read_text(encoding="utf-8"))
    return codes


def test_the_scanner_finds_codes_in_every_form() -> None:
    source = """
raise ApiError(429, "too_many_attempts", "…")
raise bad_request("…", code="bad_range")
raise not_found("…")
raise accounts.AccountError("no_such_kiosk", f"…")
await _error(ws, "rate_limited", "…")
raise SignalingError(exc.code, exc.message)
raise SignalingError("auth_failed" if exc.code != "revoked" else "revoked", exc.message)
log_event("not.an.error", severity=1)
"""
    assert codes_in(source) == {
        "too_many_attempts", "bad_range", "not_found", "no_such_kiosk", "rate_limited",
        "auth_failed", "revoked",
    }  # fmt: skip


def test_every_error_code_has_text_in_both_catalogs() -> None:
    codes = server_error_codes()
    assert {"too_many_attempts", "enrol_code_used", "not_in_call", "bad_credentials"} <= codes
    for lang in ("zh-CN", "en"):
        catalog = json.loads((ROOT / "web" / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
        missing = sorted(code for code in codes if not catalog.get(f"error.{code}"))
        assert not missing, f"web/i18n/{lang}.json lacks error.<code> for {missing}"
    zh = json.loads((ROOT / "web" / "i18n" / "zh-CN.json").read_text(encoding="utf-8"))
    english = sorted(c for c in codes if not re.search(r"[\u4e00-\u9fff]", zh[f"error.{c}"]))
    assert not english, f"zh-CN error texts without Chinese: {english}"
