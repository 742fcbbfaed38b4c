"""Time-out warnings as the API, the consoles and the board show them: the domain's data
(``cloudhelp.domain.timeouts``) with each kind's name from the message catalog."""

from __future__ import annotations

from typing import Any

from cloudhelp.core import i18n
from cloudhelp.domain import timeouts
from cloudhelp.store.models import TimeoutWarning


def kind_label(kind: str) -> str:
    """A kind's name for people, from the zh-CN message catalog (``warning.<kind>``)."""
    return i18n.translate(i18n.DEFAULT_LANG, f"warning.{kind}")


def warning_json(warning: TimeoutWarning) -> dict[str, Any]:
    """One warning's data, with its kind's ``label`` beside the ``kind``."""
    data = timeouts.warning_data(warning)
    return {"id": data["id"], "kind": data["kind"], "label": kind_label(warning.kind)} | data
