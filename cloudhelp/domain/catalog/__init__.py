"""The service catalog (办事指南): departments, categories, items and their materials.

``files`` is the file format (records, validation, JSON and CSV both ways), ``store`` the
checked import into the database and the export from it, ``queries`` what pages and the kiosk
read. The names below are the catalog's public API: ``from cloudhelp.domain import catalog``.
"""

from cloudhelp.domain.catalog.files import (
    CSV_COLUMNS,
    SAMPLE_CATALOG,
    CatalogError,
    CatalogIn,
    CategoryIn,
    Code,
    DepartmentIn,
    ItemIn,
    MaterialIn,
    Record,
    Text,
    Tier,
    parse_csv,
    parse_file,
    parse_json,
    to_csv,
    to_json,
    validate_sections,
)
from cloudhelp.domain.catalog.queries import (
    HOT_DAYS,
    get_department,
    get_item,
    hot_items,
    item_detail,
    item_summary,
    items_by_code,
    list_categories,
    list_departments,
    search_items,
)
from cloudhelp.domain.catalog.store import import_catalog, load_catalog, pinyin_initials

__all__ = [
    "CSV_COLUMNS", "HOT_DAYS", "SAMPLE_CATALOG", "CatalogError", "CatalogIn", "CategoryIn",
    "Code", "DepartmentIn", "ItemIn", "MaterialIn", "Record", "Text", "Tier", "get_department",
    "get_item", "hot_items", "import_catalog", "item_detail", "item_summary", "items_by_code",
    "list_categories", "list_departments", "load_catalog", "parse_csv", "parse_file",
    "parse_json", "pinyin_initials", "search_items", "to_csv", "to_json", "validate_sections",
]  # fmt: skip
