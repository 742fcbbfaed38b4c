"""The service catalog: the sample file, import/export round trips, and every validation error."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cloudhelp.domain import catalog
from cloudhelp.domain.catalog import CatalogError
from cloudhelp.store.models import Material, ServiceItem

Sessions = async_sessionmaker[AsyncSession]


def sample() -> dict[str, Any]:
    return json.loads(catalog.SAMPLE_CATALOG.read_text(encoding="utf-8"))


def problems_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        catalog.parse_json(json.dumps(raw, ensure_ascii=False))
    return caught.value.problems


async def import_raw(sessions: Sessions, raw: dict[str, Any]) -> dict[str, int]:
    parsed = catalog.parse_json(json.dumps(raw, ensure_ascii=False))
    async with sessions() as session, session.begin():
        return await catalog.import_catalog(session, parsed)


async def stored(sessions: Sessions) -> catalog.CatalogIn:
    async with sessions() as session:
        return await catalog.load_catalog(session)


# ---------------------------------------------------------------------------- the sample file


def test_sample_catalog_covers_the_seed() -> None:
    data = catalog.parse_file(catalog.SAMPLE_CATALOG)
    assert data.sample is True and "SAMPLE" in data.note
    assert len(data.items) >= 79
    assert len(data.departments) == 7
    assert len(data.categories) == 6
    assert {i.department for i in data.items} == {d.code for d in data.departments}
    names = [i.name for i in data.items]

    def find(*words: str) -> list[catalog.ItemIn]:
        return [i for i in data.items if all(w in i.name for w in words)]

    for words in [
        ("个体工商户", "设立"), ("个体工商户", "变更"), ("个体工商户", "注销"),
        ("渔业捕捞许可证", "核发"), ("渔业捕捞许可证", "换发"), ("房屋租赁登记备案",),
        ("占道施工",), ("道路货运经营",), ("食品生产许可",), ("企业开办",),
    ]:  # fmt: skip
        assert find(*words), f"sample catalog lacks {words}: {names}"
    food = find("食品生产许可")[0]
    assert (food.promised_days, food.statutory_days) == (5, 20)
    assert find("企业开办")[0].promised_days == 0.5
    assert all(i.materials for i in data.items)


def test_pinyin_initials_for_touch_screen_search() -> None:
    assert catalog.pinyin_initials("个体工商户设立登记") == "gtgshsldj"
    assert catalog.pinyin_initials("渔业捕捞许可证换发（延续）") == "yyblxkzhfyx"


# ---------------------------------------------------------------------------- round trips


async def test_import_then_json_export_round_trips(sessions: Sessions) -> None:
    counts = await import_raw(sessions, sample())
    assert counts["items"] == len(sample()["items"])
    first = await stored(sessions)
    exported = catalog.to_json(first)
    again = catalog.parse_json(exported)
    assert again == first
    # Importing the export changes nothing.
    async with sessions() as session, session.begin():
        await catalog.import_catalog(session, again)
    assert await stored(sessions) == first
    original = catalog.parse_file(catalog.SAMPLE_CATALOG)
    by_code = {i.code: i for i in first.items}
    for item in original.items:
        assert by_code[item.code] == item


async def test_csv_export_round_trips(sessions: Sessions) -> None:
    await import_raw(sessions, sample())
    first = await stored(sessions)
    text = catalog.to_csv(first)
    assert text.splitlines()[0].startswith("department_code,department_name")
    assert catalog.parse_csv(text) == first


async def test_item_without_materials_survives_csv(sessions: Sessions) -> None:
    raw = sample()
    raw["items"][0]["materials"] = []
    await import_raw(sessions, raw)
    assert catalog.parse_csv(catalog.to_csv(await stored(sessions))) == await stored(sessions)


async def test_reimport_updates_materials_in_place(sessions: Sessions) -> None:
    await import_raw(sessions, sample())
    async with sessions() as session:
        item = await catalog.get_item(session, "NYNC-002")
        assert item is not None
        ids_before = [m.id for m in item.materials]
    raw = sample()
    renewal = next(i for i in raw["items"] if i["code"] == "NYNC-002")
    renewal["materials"][0]["notes"] = "新的说明"
    del renewal["materials"][-1]
    await import_raw(sessions, raw)
    async with sessions() as session:
        item = await catalog.get_item(session, "NYNC-002")
        assert item is not None
        assert [m.id for m in item.materials] == ids_before[:-1]
        assert item.materials[0].notes == "新的说明"
        assert await session.scalar(select(func.count()).select_from(Material)) == sum(
            len(i["materials"]) for i in raw["items"]
        )


# ---------------------------------------------------------------------------- bad files


def test_missing_field_names_record_and_field() -> None:
    raw = sample()
    del raw["items"][3]["statutory_days"]
    code = raw["items"][3]["code"]
    assert problems_of(raw) == [f"items[3] (code {code}), field statutory_days: Field required"]


async def test_duplicate_code_is_refused_on_import(sessions: Sessions) -> None:
    raw = sample()
    raw["items"].append(copy.deepcopy(raw["items"][0]))
    code = raw["items"][0]["code"]
    with pytest.raises(CatalogError) as caught:
        await import_raw(sessions, raw)
    assert caught.value.problems == [f"items (code {code}), field code: duplicate code in the file"]
    assert (await stored(sessions)).items == []


def test_promised_beyond_statutory_is_refused() -> None:
    raw = sample()
    raw["items"][0]["promised_days"] = 30
    raw["items"][0]["statutory_days"] = 20
    (problem,) = problems_of(raw)
    assert problem.startswith(f"items[0] (code {raw['items'][0]['code']}), field record:")
    assert "promised_days (30) exceeds statutory_days (20)" in problem


def test_material_errors_name_the_material() -> None:
    raw = sample()
    raw["items"][1]["materials"][2]["form"] = "photocopy"
    raw["items"][1]["materials"][0]["requirement"] = "conditional"
    problems = problems_of(raw)
    code = raw["items"][1]["code"]
    assert f"items[1] (code {code}), field materials.2.form: Input should be" in problems[1]
    assert problems[0] == (
        f"items[1] (code {code}), field materials.0: a conditional material needs its condition"
    )


async def test_unknown_department_is_refused(sessions: Sessions) -> None:
    raw = sample()
    raw["items"][5]["department"] = "NOPE"
    with pytest.raises(CatalogError) as caught:
        await import_raw(sessions, raw)
    code = raw["items"][5]["code"]
    assert caught.value.problems == [
        f"items[5] (code {code}), field department: unknown department 'NOPE'"
    ]


async def test_bad_file_changes_nothing(sessions: Sessions) -> None:
    await import_raw(sessions, sample())
    before = await stored(sessions)
    raw = sample()
    raw["items"][0]["name"] = "改过的名称"
    raw["items"].append({**copy.deepcopy(raw["items"][1]), "code": "NEW-1"})
    raw["items"].append({**copy.deepcopy(raw["items"][1]), "code": "NEW-2", "category": "nope"})
    with pytest.raises(CatalogError, match="unknown category 'nope'"):
        await import_raw(sessions, raw)
    assert await stored(sessions) == before
    async with sessions() as session:
        assert await session.scalar(select(ServiceItem).where(ServiceItem.code == "NEW-1")) is None


def test_broken_json_names_the_line() -> None:
    with pytest.raises(CatalogError) as caught:
        catalog.parse_json('{\n "items": [\n  {"code": "A",,}\n ]\n}')
    assert caught.value.problems[0].startswith("line 3, column 16: broken JSON")


def test_not_an_object() -> None:
    with pytest.raises(CatalogError, match="one JSON object"):
        catalog.parse_json("[1, 2]")


def test_csv_missing_column() -> None:
    with pytest.raises(CatalogError) as caught:
        catalog.parse_csv("department_code,item_code\nA,B\n")
    assert caught.value.problems[0].startswith("line 1 (header): missing column(s) department_name")


def test_csv_bad_value_names_the_line() -> None:
    data = catalog.parse_file(catalog.SAMPLE_CATALOG)
    lines = catalog.to_csv(data).splitlines()
    columns = lines[0].split(",")
    code = lines[1].split(",")[columns.index("item_code")]
    rows = [line.split(",") for line in lines[1:]]
    for row in rows:
        if row[columns.index("item_code")] == code:
            row[columns.index("statutory_days")] = "many"
    bad = "\n".join([lines[0], *(",".join(row) for row in rows)]) + "\n"
    with pytest.raises(CatalogError) as caught:
        catalog.parse_csv(bad)
    (problem,) = caught.value.problems
    assert problem.startswith("line 2: items[0] (code ")
    assert "field statutory_days: Input should be a valid number" in problem


def test_csv_rows_of_one_item_must_agree() -> None:
    data = catalog.parse_file(catalog.SAMPLE_CATALOG)
    lines = catalog.to_csv(data).splitlines()
    columns = lines[0].split(",")
    row = lines[2].split(",")
    row[columns.index("promised_days")] = "3"
    bad = "\n".join([lines[0], lines[1], ",".join(row), *lines[3:]]) + "\n"
    with pytest.raises(CatalogError) as caught:
        catalog.parse_csv(bad)
    assert caught.value.problems[0].endswith("field promised_days: differs from line 2")


def test_csv_short_row() -> None:
    data = catalog.parse_file(catalog.SAMPLE_CATALOG)
    lines = catalog.to_csv(data).splitlines()
    with pytest.raises(CatalogError, match="line 3: wrong number of columns"):
        catalog.parse_csv("\n".join([lines[0], lines[1], "a,b,c", *lines[3:]]) + "\n")
