"""Templates, static assets and message catalogs of the CloudHelp pages (package data)."""

from pathlib import Path

WEB_ROOT = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_ROOT / "templates"
STATIC_DIR = WEB_ROOT / "static"
I18N_DIR = WEB_ROOT / "i18n"
