"""Chromium pages across nodes behind nginx (issue 17; docs/scaling.md): one page's node is
SIGKILLed mid-call, the page reconnects through nginx to another node, and the call goes on.
Real parts: nginx with the deploy/ site, a `cloudhelp serve` node, an in-process node, one
PostgreSQL database, redis-server, headless Chromium with fake devices.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from cloudhelp.store.models import Staff, Ticket
from tests.browserkit import chromium, new_page, snap, wait_for_video
from tests.callkit import running_server, until
from tests.nginxkit import nginx_in_front
from tests.rediskit import shared_redis_url
from tests.test_board_browser import signed_in
from tests.test_browser import call_answered, enrolled_kiosk, signed_in_staff
from tests.test_nodes import hub_of, serving_node
from tests.test_redis_broker import node, pg_demo_url
from tests.tlskit import TestCA

__all__ = ["pg_demo_url"]  # the fixture, used by name

# One after another on one worker: each runs a node, nginx and Chromium pages; side by side at
# the start of a run (with the other browser tests) they took 140-150 s each and one ran out of
# time on a slower machine.
pytestmark = pytest.mark.one_worker


async def frames_shown(page: Page, selector: str) -> int:
    """How many frames the <video> has shown so far."""
    return int(
        await page.eval_on_selector(selector, "v => v.getVideoPlaybackQuality().totalVideoFrames")
    )


@pytest.mark.parametrize("dead", ["kiosk", "staff"])
async def test_a_page_whose_node_is_killed_mid_call_goes_on_through_nginx(
    dead: str, pg_demo_url: str, tmp_path: Path
) -> None:
    """nginx sends one page (the kiosk's, or zhaogang's console) to node "dead", whose backup
    is node B; the other page is on B. The resident calls, zhaogang answers, video both ways,
    and the console's queue no longer lists the ticket. "dead" is SIGKILLed: its page says it
    is reconnecting, reconnects through nginx (now to B), and B re-creates its session from
    the card in Redis. The call goes on: the banner goes, chat goes both ways, both videos
    keep playing (they never went through a node), and the hang-up ends the call. A board
    page on "dead" too starts a new session on B and follows the call to its end."""
    url = shared_redis_url()
    ca = TestCA.create(tmp_path / "pki")
    async with running_server(
        pg_demo_url, redis_url=url, node_id=node("b"), grace_seconds=10,
        trusted_proxies=["127.0.0.1"],
    ) as b:  # fmt: skip
        async with (
            serving_node(pg_demo_url, url, node("dead"), tmp_path / "dead") as (process, port),
            nginx_in_front(port, tmp_path / "nginx", ca, backup_ports=[b.server.port]) as nginx,
            chromium(extra_flags=ca.chromium_flags()) as browser,
        ):
            kiosk = await new_page(browser, nginx.base_url if dead == "kiosk" else b.base_url)
            staff = await new_page(browser, nginx.base_url if dead == "staff" else b.base_url)
            moved = kiosk if dead == "kiosk" else staff
            await enrolled_kiosk(b, kiosk)
            await signed_in_staff(b, staff, "zhaogang")
            await call_answered(kiosk, staff)
            await wait_for_video(kiosk, "#remote-main")
            # The ticket was taken on "dead" and answered on B: the console's queue, which
            # listed it while it rang, is empty (each node pushes queues to its own sessions).
            await expect(staff.locator("#queue li")).to_have_count(0)
            await expect(staff.locator("#queue-empty")).to_be_visible()
            await kiosk.fill("#chat-input", "我在前关驿站")
            await kiosk.click("#chat-form button")
            await expect(staff.locator("#chat li.them").last).to_have_text("我在前关驿站")
            assert hub_of(b).sessions_recovered == 0  # that page's session is on "dead"
            # Sunhua's board, through nginx too: on "dead" until it dies.
            board = await new_page(browser, nginx.base_url)
            await board.set_viewport_size({"width": 1920, "height": 1080})
            await signed_in(b, board, "sunhua")
            await board.goto("/board")
            await expect(board.locator("#calls li")).to_have_count(1)
            await expect(board.locator("#calls li")).to_contain_text("赵刚")

            process.kill()
            await asyncio.wait_for(process.wait(), 10)
            await expect(moved.locator("#banner")).to_contain_text("正在重新连接")
            await expect(moved.locator("#banner")).to_be_hidden(timeout=20_000)
            await until(lambda: hub_of(b).sessions_recovered == 1, what="the session recovered")

            await kiosk.fill("#chat-input", "刚才网络断了一下")
            await kiosk.click("#chat-form button")
            await expect(staff.locator("#chat li.them").last).to_have_text("刚才网络断了一下")
            await staff.fill("#chat-input", "没关系，我们继续")
            await staff.click("#chat-form button")
            await expect(kiosk.locator("#chat li.them").last).to_have_text("没关系，我们继续")
            await expect(kiosk.locator("[data-screen=call]")).to_be_visible()
            await expect(staff.locator("#queue li")).to_have_count(0)
            for page in (kiosk, staff):
                shown = await frames_shown(page, "#remote-main")
                await page.wait_for_function(
                    "([s, n]) => document.querySelector(s).getVideoPlaybackQuality()"
                    ".totalVideoFrames > n + 10",
                    arg=["#remote-main", shown],
                    timeout=20_000,
                )
            await snap(kiosk, f"nodes-{dead}-node-died-kiosk")
            await snap(staff, f"nodes-{dead}-node-died-staff")
            # The board's session died with its node (it was in no call, so it left no card):
            # the page starts a new one on B and watches again; the call is still listed.
            await expect(board.locator("#calls li")).to_have_count(1)
            await expect(board.locator("#calls li")).to_contain_text("赵刚")

            await kiosk.click("#hangup")
            await kiosk.click("#hangup-confirm")
            await expect(kiosk.locator("[data-screen=done]")).to_be_visible()
            await expect(staff.locator("#wrapup")).to_be_visible()
            await expect(board.locator("#calls li")).to_have_count(0)  # pushed by B
            await snap(board, f"nodes-{dead}-node-died-board-after-the-call")
        async with b.state.db.read() as session:
            ticket = (await session.scalars(select(Ticket))).one()
            assert ticket.status in ("wrapup", "completed")
            assert ticket.end_reason == "kiosk_hangup"


async def test_a_call_transferred_to_a_console_on_another_node_goes_on_in_the_pages(
    pg_demo_url: str, tmp_path: Path
) -> None:
    """The kiosk page and zhaogang's console are on node B; wangli's console is on node A (a
    `cloudhelp serve` process). zhaogang transfers the fishing-licence call to 市场监管: the
    kiosk waits again and says why, wangli's console on A rings for the ticket of B's kiosk,
    he answers, and the kiosk and his console are in a call across the nodes — video both
    ways, chat both ways — until the resident hangs up."""
    url = shared_redis_url()
    async with running_server(pg_demo_url, redis_url=url, node_id=node("b"), grace_seconds=10) as b:
        async with (
            serving_node(pg_demo_url, url, node("a"), tmp_path / "a") as (_, port),
            chromium() as browser,
        ):
            kiosk = await new_page(browser, b.base_url)
            zhaogang = await new_page(browser, b.base_url)
            wangli = await new_page(browser, f"http://127.0.0.1:{port}")
            await enrolled_kiosk(b, kiosk)
            await signed_in_staff(b, zhaogang, "zhaogang")
            await signed_in_staff(b, wangli, "wangli")
            await call_answered(kiosk, zhaogang)

            await zhaogang.click("#transfer")
            await zhaogang.locator("#transfer-dialog input[value=SCJG]").check()
            await zhaogang.click("#transfer-confirm")
            await expect(kiosk.locator("[data-screen=waiting]")).to_be_visible()
            await expect(kiosk.locator("#banner")).to_have_text(
                "工作人员已为您转到其他部门，请继续等待。"
            )
            await expect(zhaogang.locator("#wrapup")).to_be_visible()
            await expect(wangli.locator("#ring")).to_be_visible(timeout=20_000)
            await expect(wangli.locator("#ring-item")).to_have_text("渔业捕捞许可证换发（延续）")
            await expect(wangli.locator("#ring-case")).to_have_text("由 赵刚（区农业农村局）转来")
            await wangli.click("#ring-accept")

            await expect(kiosk.locator("[data-screen=call]")).to_be_visible()
            await expect(kiosk.locator("#call-with")).to_contain_text("王丽")
            assert await wait_for_video(wangli, "#remote-main") > 0
            assert await wait_for_video(kiosk, "#remote-main") > 0
            await kiosk.fill("#chat-input", "我的营业执照也要换")
            await kiosk.click("#chat-form button")
            await expect(wangli.locator("#chat li.them").last).to_have_text("我的营业执照也要换")
            await wangli.fill("#chat-input", "好的，请把执照放在镜头下")
            await wangli.click("#chat-form button")
            await expect(kiosk.locator("#chat li.them").last).to_have_text(
                "好的，请把执照放在镜头下"
            )
            await snap(kiosk, "nodes-transfer-kiosk-with-wangli")
            await snap(wangli, "nodes-transfer-wangli-on-node-a")

            await kiosk.click("#hangup")
            await kiosk.click("#hangup-confirm")
            await expect(kiosk.locator("[data-screen=done]")).to_be_visible()
            await expect(wangli.locator("#wrapup")).to_be_visible()
        async with b.state.db.read() as session:
            ticket = (await session.scalars(select(Ticket))).one()
            staff_ids = {s.username: s.id for s in (await session.scalars(select(Staff))).all()}
        assert ticket.staff_id == staff_ids["wangli"] and ticket.end_reason == "kiosk_hangup"
