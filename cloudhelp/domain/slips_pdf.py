"""Appointment slips (预约单) as a PDF: one A5 page per appointment with its code as a QR, the
date, time and station, the check-in window and the materials to bring. A campaign's slips go
into one file. The slip is a Chinese document whatever the reader's language, as the notice."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cloudhelp.core.clock import LOCAL_TZ
from cloudhelp.domain import appointments
from cloudhelp.domain.notice_pdf import SIMPLIFIED_CHINESE, FontMissing, font_path, qr_png
from cloudhelp.store.models import Appointment

if TYPE_CHECKING:
    from fpdf import FPDF

A5 = (148, 210)  # mm (fpdf2 warns when the name "A5" is given)
TITLE = "预约办理单"
SUBTITLE = "甘井子区政务服务 · 云帮办"
REQUIREMENTS = {"required": "必交", "conditional": "视情形", "optional": "选交"}
HOW = (
    "请在预约时间前30分钟至开始后15分钟内，到上述驿站自助终端点「预约签到」并输入预约码，"
    "即可优先于现场取号的居民办理本事项。逾时未签到视为爽约。"
)
MOVE = "改约或取消：扫右侧二维码或打开 {url} ，输入预约码和手机号后四位。"


@dataclass(frozen=True)
class Slip:
    """What one slip says, as plain text (so that it can be drawn in another process)."""

    code: str
    person: str
    item: str
    day: str
    time: str
    window: str
    station: str
    materials: list[str]
    qr: str
    book_url: str  # the page where it is moved or cancelled


def slip_of(a: Appointment, book_url: str) -> Slip:
    starts, ends = a.starts_at.astimezone(LOCAL_TZ), a.ends_at.astimezone(LOCAL_TZ)
    opens, closes = (t.astimezone(LOCAL_TZ) for t in appointments.window(a))
    materials = [
        f"{m.name}【{REQUIREMENTS.get(m.requirement, m.requirement)}】" for m in a.item.materials
    ]
    return Slip(
        code=appointments.show_code(a.code),
        person=f"{a.name}  {a.phone[:3]}****{a.phone[-4:]}",
        item=a.item.name,
        day=f"{starts:%Y年%m月%d日}",
        time=f"{starts:%H:%M}–{ends:%H:%M}",
        window=f"{opens:%H:%M}–{closes:%H:%M}",
        station=a.station.name + (f"（{a.station.address}）" if a.station.address else ""),
        materials=materials,
        qr=a.code,
        book_url=book_url,
    )


def render(slips: Sequence[Slip]) -> bytes:
    """Every slip, one A5 page each, in one PDF."""
    from fpdf import FPDF  # here: only the child process that draws the slips pays the import

    pdf = FPDF(format=A5)
    pdf.set_margins(12, 12, 12)
    pdf.set_auto_page_break(True, 12)
    pdf.add_font("cjk", fname=str(font_path()), collection_font_number=SIMPLIFIED_CHINESE)
    pdf.set_title(TITLE)
    for slip in slips:
        _page(pdf, slip)
    return bytes(pdf.output())


def _page(pdf: FPDF, slip: Slip) -> None:
    pdf.add_page()
    pdf.image(qr_png(slip.qr), x=pdf.w - 12 - 30, y=10, w=30)
    pdf.set_font("cjk", size=18)
    pdf.cell(0, 10, TITLE, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=9)
    pdf.cell(0, 6, SUBTITLE, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("cjk", size=22)
    pdf.cell(0, 12, f"预约码 {slip.code}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    rows = (
        ("预约人", slip.person),
        ("办理事项", slip.item),
        ("日期", slip.day),
        ("时间", slip.time),
        ("签到时间", slip.window),
        ("办理地点", slip.station),
    )
    pdf.set_font("cjk", size=11)
    for name, value in rows:
        pdf.cell(24, 8, name, border=1)
        pdf.multi_cell(0, 8, value, border=1, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.cell(0, 8, "请携带以下材料：", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=9.5)
    for number, material in enumerate(slip.materials, start=1):
        pdf.multi_cell(0, 5.5, f"{number}. {material}", align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("cjk", size=9)
    pdf.multi_cell(0, 5.5, HOW, align="L", new_x="LMARGIN", new_y="NEXT")
    # How to move or cancel it, the page's QR beside (a phone's camera opens it), the address
    # a link too (the slip read on a phone).
    side = 24  # mm: the QR's side
    if pdf.get_y() + side > pdf.h - pdf.b_margin:
        pdf.add_page()
    top = pdf.get_y() + 1
    page_qr = qr_png(slip.book_url, scale=4)
    pdf.image(page_qr, x=pdf.w - pdf.r_margin - side, y=top, w=side, link=slip.book_url)
    pdf.set_y(top)
    pdf.multi_cell(
        pdf.w - pdf.l_margin - pdf.r_margin - side - 3, 5.5, MOVE.format(url=slip.book_url),
        align="L", new_x="LMARGIN", new_y="NEXT", link=slip.book_url,
    )  # fmt: skip


FONT_MISSING_STATUS = 3


def main() -> int:
    """Draw the slips given as JSON on stdin; the PDF on stdout. Run by the server in a child
    process (``python -m cloudhelp.domain.slips_pdf``): drawing parses a 20 MB font collection
    into objects the server's collector would keep for minutes (core/gcpolicy.py)."""
    slips = [Slip(**raw) for raw in json.load(sys.stdin)]
    try:
        data = render(slips)
    except FontMissing as exc:
        print(exc, file=sys.stderr)
        return FONT_MISSING_STATUS
    sys.stdout.buffer.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
