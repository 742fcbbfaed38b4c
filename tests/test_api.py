"""The JSON API and the pages, through a real server on a loopback port."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import ClientSession
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cloudhelp.domain import queue
from cloudhelp.store.models import Kiosk, ServiceItem, Ticket, utcnow

Sessions = async_sessionmaker[AsyncSession]


async def get_json(http: ClientSession, path: str, status: int = 200) -> dict:
    async with http.get(path) as response:
        assert response.status == status, await response.text()
        assert response.content_type == "application/json"
        return await response.json()


async def test_list_search_and_filter_items(http: ClientSession) -> None:
    body = await get_json(http, "/api/v1/items?limit=200")
    assert body["total"] >= 79 and len(body["items"]) == body["total"]

    by_name = await get_json(http, "/api/v1/items?q=渔业捕捞许可证")
    assert {i["code"] for i in by_name["items"]} == {"NYNC-001", "NYNC-002", "NYNC-003", "NYNC-004"}

    by_pinyin = await get_json(http, "/api/v1/items?q=GTGSH")  # 个体工商户
    assert {i["code"] for i in by_pinyin["items"]} >= {"SCJG-001", "SCJG-002", "SCJG-003"}
    assert all("个体工商户" in i["name"] for i in by_pinyin["items"])

    by_code = await get_json(http, "/api/v1/items?q=jtj-001")
    assert [i["code"] for i in by_code["items"]] == ["JTJ-001"]

    fishery = await get_json(http, "/api/v1/items?department=NYNC&limit=200")
    assert fishery["total"] == 14
    assert {i["department"]["code"] for i in fishery["items"]} == {"NYNC"}

    market = await get_json(http, "/api/v1/items?category=market&tier=district&limit=200")
    assert market["total"] > 0
    assert all("district" in i["tiers"] and i["category"]["letter"] == "A" for i in market["items"])

    community = await get_json(http, "/api/v1/items?tier=community&limit=200")
    assert all("community" in i["tiers"] for i in community["items"])
    assert 0 < community["total"] < body["total"]

    hall_only = await get_json(http, "/api/v1/items?cloud=false&limit=200")
    assert hall_only["total"] > 0 and not any(i["cloud"] for i in hall_only["items"])

    page = await get_json(http, "/api/v1/items?limit=10&offset=80")
    assert page["total"] == body["total"] and len(page["items"]) == body["total"] - 80
    assert [i["code"] for i in page["items"]] == [i["code"] for i in body["items"][80:]]

    nothing = await get_json(http, "/api/v1/items?q=%25_不存在")
    assert nothing == {"items": [], "total": 0, "limit": 50, "offset": 0}


async def test_one_item_with_materials(http: ClientSession) -> None:
    item = await get_json(http, "/api/v1/items/NYNC-002")
    assert item["name"] == "渔业捕捞许可证换发（延续）"
    assert item["promised_days"] == 1 and item["statutory_days"] == 20
    assert item["department"] == {"code": "NYNC", "name": "区农业农村局"}
    assert [m["position"] for m in item["materials"]] == list(range(1, len(item["materials"]) + 1))
    first = item["materials"][0]
    assert set(first) >= {"name", "requirement", "condition", "form", "copies", "common_mistakes"}


async def test_unknown_item_is_a_json_404(http: ClientSession) -> None:
    body = await get_json(http, "/api/v1/items/NO-SUCH", status=404)
    assert body == {
        "error": {"code": "not_found", "message": "There is no service item with code 'NO-SUCH'."}
    }
    body = await get_json(http, "/api/v1/no-such-thing", status=404)
    assert body["error"]["code"] == "not_found"


async def test_bad_parameters_are_json_400(http: ClientSession) -> None:
    for query, word in [("limit=ten", "limit"), ("limit=5000", "limit"), ("tier=moon", "tier"),
                        ("cloud=maybe", "cloud")]:  # fmt: skip
        body = await get_json(http, f"/api/v1/items?{query}", status=400)
        assert body["error"]["code"] == "bad_request"
        assert f"'{word}'" in body["error"]["message"]


async def test_departments_categories_and_stations(http: ClientSession) -> None:
    departments = (await get_json(http, "/api/v1/departments"))["departments"]
    assert len(departments) == 7 and sum(d["items"] for d in departments) >= 79
    categories = (await get_json(http, "/api/v1/categories"))["categories"]
    assert [c["letter"] for c in categories] == ["A", "B", "C", "D", "E", "F"]
    stations = (await get_json(http, "/api/v1/stations"))["stations"]
    tiers = [s["tier"] for s in stations]
    assert tiers[0] == "district" and "street" in tiers and "community" in tiers
    qianguan = next(s for s in stations if s["code"] == "DLW-QG")
    assert qianguan["parent"] == "DLW" and qianguan["name"] == "前关社区驿站"
    assert [k["code"] for k in qianguan["kiosks"]] == ["QG-01", "QG-02"]


async def test_home_and_catalog_pages(http: ClientSession) -> None:
    async with http.get("/") as response:
        html = await response.text()
    assert response.status == 200
    assert '<html lang="zh-CN">' in html and "云帮办" in html and 'href="/catalog"' in html
    assert "前关社区驿站" in html

    async with http.get("/?lang=en") as response:
        html = await response.text()
        assert response.cookies["lang"].value == "en"
    assert '<html lang="en">' in html and "CloudHelp" in html
    async with http.get("/catalog") as response:  # the cookie keeps English
        assert "Service items" in await response.text()
    async with http.get("/catalog?lang=zh-CN&q=不存在的事项") as response:
        assert "没有找到符合条件的事项" in await response.text()

    async with http.get("/catalog?q=渔业捕捞") as response:
        html = await response.text()
    assert "渔业捕捞许可证换发（延续）" in html and "共 4 个事项" in html

    async with http.get("/catalog/SCJG-008") as response:
        html = await response.text()
    assert "食品生产许可" in html and "5 个工作日" in html and "20 个工作日" in html

    async with http.get("/catalog/NO-SUCH") as response:
        assert response.status == 404
        assert "您要找的页面或内容不存在" in await response.text()

    async with http.get("/static/css/app.css") as response:
        assert response.status == 200


async def _take_tickets(sessions: Sessions, code: str, count: int, days_ago: int = 0) -> None:
    """``count`` tickets for item ``code`` at the first kiosk, taken ``days_ago`` days ago."""
    async with sessions() as session, session.begin():
        item = await session.scalar(select(ServiceItem).where(ServiceItem.code == code))
        kiosk = await session.scalar(select(Kiosk).order_by(Kiosk.id).limit(1))
        assert item is not None and kiosk is not None
        new = [
            queue.NewTicket(item, kiosk.id, kiosk.station_id, session_id=f"{code}-{n}")
            for n in range(count)
        ]
        for ticket in await queue.take_many(session, new):
            ticket.status = "abandoned"
            ticket.enqueued_at -= timedelta(days=days_ago)


async def test_hot_items_come_from_tickets_then_the_catalogs_featured_items(
    http: ClientSession, sessions: Sessions
) -> None:
    async def hot(limit: int = 8) -> list[str]:
        body = await get_json(http, f"/api/v1/items/hot?limit={limit}")
        return [i["code"] for i in body["items"]]

    async with sessions() as session:
        featured = list(
            (
                await session.scalars(
                    select(ServiceItem.code)
                    .where(ServiceItem.featured.is_(True), ServiceItem.cloud.is_(True))
                    .order_by(ServiceItem.id)
                )
            ).all()
        )
    # No tickets yet: the items the catalog features, in catalog order.
    assert len(featured) == 8 and "NYNC-002" in featured
    assert await hot() == featured

    # The last 30 days' tickets rank first (most first); items a kiosk cannot call for
    # (cloud false) and older tickets do not count; the featured items top the list up.
    await _take_tickets(sessions, "NYNC-005", 3)
    await _take_tickets(sessions, "JTJ-002", 1)
    await _take_tickets(sessions, "SCJG-014", 5)  # handled in the hall only
    await _take_tickets(sessions, "WJJ-001", 9, days_ago=31)
    assert await hot(4) == ["NYNC-005", "JTJ-002", *featured[:2]]
    assert await hot(1) == ["NYNC-005"]

    # A catalog that features nothing: only what was asked for; with no recent tickets, none
    # (the kiosk then hides the block).
    async with sessions() as session, session.begin():
        await session.execute(update(ServiceItem).values(featured=False))
    assert await hot() == ["NYNC-005", "JTJ-002"]
    async with sessions() as session, session.begin():
        await session.execute(update(Ticket).values(enqueued_at=utcnow() - timedelta(days=40)))
    assert await hot() == []
