"""Appointment slips (预约单) as a PDF: one A5 page per appointment with its code as a QR, the
date, time and station, the check-in window and the materials to bring. A campaign's slips go
into one file. The slip is a Chinese document whatever the reader's language, as the notice."""

from __future__ import annotations

import io
from collections.abc import Sequence

import segno
from fpdf import FPDF

from cloudhelp.core.clock import LOCAL_TZ
from cloudhelp.domain import appointments
from cloudhelp.domain.notice_pdf import SIMPLIFIED_CHINESE, font_path
from cloudhelp.store.models import Appointment

A5 = (148, 210)  # mm (fpdf2 warns when the name "A5" is given)
TITLE = "预约办理单"
SUBTITLE = "甘井子区政务服务 · 云帮办"
REQUIREMENTS = {"required": "必交", "conditional": "视情形", "optional": "选交"}
HOW = (
    "请在预约时间前 30 分钟至开始后 15 分钟内，到上述驿站自助终端点「预约签到」并输入预约码，"
    "即可优先于现场取号的居民办理本事项。逾时未签到视为爽约，可凭预约码和手机号后四位改约或取消。"
)


def render(slips: Sequence[Appointment]) -> bytes:
    """Every appointment's slip, one A5 page each, in one PDF."""
    pdf = FPDF(format=A5)
    pdf.set_margins(12, 12, 12)
    pdf.set_auto_page_break(True, 12)
    pdf.add_font("cjk", fname=str(font_path()), collection_font_number=SIMPLIFIED_CHINESE)
    pdf.set_title(TITLE)
    for appointment in slips:
        _page(pdf, appointment)
    return bytes(pdf.output())


def _page(pdf: FPDF, a: Appointment) -> None:
    pdf.add_page()
    code = appointments.show_code(a.code)
    qr = io.BytesIO()
    segno.make(a.code, error="m").save(qr, kind="png", scale=6, border=1)
    qr.seek(0)
    pdf.image(qr, x=pdf.w - 12 - 30, y=10, w=30)
    pdf.set_font("cjk", size=18)
    pdf.cell(0, 10, TITLE, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=9)
    pdf.cell(0, 6, SUBTITLE, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("cjk", size=22)
    pdf.cell(0, 12, f"预约码 {code}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    starts, ends = a.starts_at.astimezone(LOCAL_TZ), a.ends_at.astimezone(LOCAL_TZ)
    opens, closes = (t.astimezone(LOCAL_TZ) for t in appointments.window(a))
    station = a.station.name + (f"（{a.station.address}）" if a.station.address else "")
    rows = (
        ("预约人", f"{a.name}  {a.phone[:3]}****{a.phone[-4:]}"),
        ("办理事项", a.item.name),
        ("日期", f"{starts:%Y年%m月%d日}"),
        ("时间", f"{starts:%H:%M}–{ends:%H:%M}"),
        ("签到时间", f"{opens:%H:%M}–{closes:%H:%M}"),
        ("办理地点", station),
    )
    pdf.set_font("cjk", size=11)
    for name, value in rows:
        pdf.cell(24, 8, name, border=1)
        pdf.multi_cell(0, 8, value, border=1, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("cjk", size=11)
    pdf.cell(0, 8, "请携带以下材料：", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=9.5)
    for number, material in enumerate(a.item.materials, start=1):
        need = REQUIREMENTS.get(material.requirement, material.requirement)
        pdf.multi_cell(0, 5.5, f"{number}. {material.name}【{need}】", new_x="LMARGIN",
                       new_y="NEXT")  # fmt: skip
    pdf.ln(3)
    pdf.set_font("cjk", size=9)
    pdf.multi_cell(0, 5.5, HOW, new_x="LMARGIN", new_y="NEXT")
