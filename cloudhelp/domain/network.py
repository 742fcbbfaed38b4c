"""The three-tier station network (三级联动): stations, kiosks, staff and their skills."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.domain.catalog import CatalogError, Code, Record, validate_sections
from cloudhelp.store.models import Department, Kiosk, ServiceItem, Staff, StaffSkill, Station

SAMPLE_NETWORK = Path(__file__).resolve().parents[1] / "data" / "sample_network.json"
TIER_NAMES = {"district": "区大厅", "street": "街道中心", "community": "社区驿站"}


class StationIn(Record):
    code: Code
    name: Annotated[str, Field(min_length=1, max_length=100)]
    tier: Literal["community", "street", "district"]
    parent: Code | None = None
    address: str = ""
    contact: str = ""
    phone: str = ""


class KioskIn(Record):
    code: Code
    name: Annotated[str, Field(min_length=1, max_length=100)]
    station: Code


class StaffIn(Record):
    username: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]{1,49}$")]
    display_name: Annotated[str, Field(min_length=1, max_length=50)]
    role: Literal["staff", "supervisor", "admin", "attendant"] = "staff"
    station: Code
    departments: list[Code] = Field(default_factory=list)
    items: list[Code] = Field(default_factory=list)


TIER_RANK = {"community": 0, "street": 1, "district": 2}


async def import_network(session: AsyncSession, raw: object) -> dict[str, int]:
    """Upsert stations, kiosks and staff (without touching passwords); the caller commits."""
    parsed = validate_sections(
        raw,
        {"stations": StationIn, "kiosks": KioskIn, "staff": StaffIn},
        allowed=("sample", "note"),
    )
    stations_in: list[StationIn] = parsed["stations"]
    stations = {s.code: s for s in (await session.scalars(select(Station))).all()}
    departments = {d.code: d for d in (await session.scalars(select(Department))).all()}
    items = {i.code: i for i in (await session.scalars(select(ServiceItem))).all()}
    tiers = {code: s.tier for code, s in stations.items()} | {s.code: s.tier for s in stations_in}
    problems = _station_problems(stations_in, tiers) + _people_problems(
        parsed["kiosks"], parsed["staff"], tiers, set(departments), set(items)
    )
    if problems:
        raise CatalogError(problems)

    # Parents first: the file lists them in any order.
    for st in sorted(stations_in, key=lambda s: -TIER_RANK[s.tier]):
        row = stations.get(st.code) or Station(code=st.code)
        row.name, row.tier = st.name, st.tier
        row.parent_id = stations[st.parent].id if st.parent else None
        row.address, row.contact, row.phone = st.address, st.contact, st.phone
        session.add(row)
        await session.flush()
        stations[st.code] = row
    kiosks = {k.code: k for k in (await session.scalars(select(Kiosk))).all()}
    for k in parsed["kiosks"]:
        kiosk = kiosks.get(k.code) or Kiosk(code=k.code)
        kiosk.name, kiosk.station = k.name, stations[k.station]
        session.add(kiosk)
    staff = {s.username: s for s in (await session.scalars(select(Staff))).all()}
    for p in parsed["staff"]:
        member = staff.get(p.username) or Staff(username=p.username)
        member.display_name, member.role, member.station = (
            p.display_name,
            p.role,
            stations[p.station],
        )
        member.skills = [StaffSkill(department_id=departments[c].id) for c in p.departments] + [
            StaffSkill(item_id=items[c].id) for c in p.items
        ]
        session.add(member)
    await session.flush()
    return {key: len(value) for key, value in parsed.items()}


def _station_problems(stations: list[StationIn], tiers: dict[str, str]) -> list[str]:
    """Stations whose parent is missing, unknown or not on the tier above."""
    problems: list[str] = []
    for index, st in enumerate(stations):
        label = f"stations[{index}] (code {st.code})"
        if st.parent is None:
            if st.tier != "district":
                problems.append(f"{label}, field parent: only the district hall has no parent")
        elif st.parent not in tiers:
            problems.append(f"{label}, field parent: unknown station {st.parent!r}")
        elif TIER_RANK[tiers[st.parent]] != TIER_RANK[st.tier] + 1:
            problems.append(f"{label}, field parent: a {st.tier} station belongs to the tier above")
    return problems


def _people_problems(
    kiosks: list[KioskIn],
    staff: list[StaffIn],
    tiers: dict[str, str],
    departments: set[str],
    items: set[str],
) -> list[str]:
    """Kiosks and staff at unknown stations, staff with unknown departments or items."""
    problems = [
        f"kiosks[{index}] (code {kiosk.code}), field station: unknown station {kiosk.station!r}"
        for index, kiosk in enumerate(kiosks)
        if kiosk.station not in tiers
    ]
    for index, person in enumerate(staff):
        label = f"staff[{index}] ({person.username})"
        if person.station not in tiers:
            problems.append(f"{label}, field station: unknown station {person.station!r}")
        problems += [
            f"{label}, field departments: unknown department {c!r}"
            for c in person.departments
            if c not in departments
        ]
        problems += [
            f"{label}, field items: unknown item {c!r}" for c in person.items if c not in items
        ]
    return problems


def load_sample_network() -> Any:
    return json.loads(SAMPLE_NETWORK.read_text(encoding="utf-8"))


async def list_stations(session: AsyncSession) -> list[dict[str, Any]]:
    """Stations with their kiosks, ordered district → street → community."""
    stations = (await session.scalars(select(Station))).all()
    kiosks = (await session.scalars(select(Kiosk).order_by(Kiosk.code))).all()
    by_id = {s.id: s for s in stations}
    ordered = sorted(stations, key=lambda s: (-TIER_RANK[s.tier], s.code))
    return [
        {
            "code": s.code,
            "name": s.name,
            "tier": s.tier,
            "tier_name": TIER_NAMES[s.tier],
            "parent": by_id[s.parent_id].code if s.parent_id else None,
            "address": s.address,
            "contact": s.contact,
            "phone": s.phone,
            "kiosks": [{"code": k.code, "name": k.name} for k in kiosks if k.station_id == s.id],
        }
        for s in ordered
    ]
