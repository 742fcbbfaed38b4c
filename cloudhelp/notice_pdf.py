"""The one-time correction notice as a PDF (fpdf2, with a system CJK font and a QR code)."""

from __future__ import annotations

import io
from pathlib import Path

import segno
from fpdf import FPDF

from cloudhelp.models import Case, CorrectionNotice
from cloudhelp.queue import LOCAL_TZ

# Noto Sans CJK (Debian: fonts-noto-cjk); index 2 of the collection is Simplified Chinese.
FONT_CANDIDATES = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc"),
)
SIMPLIFIED_CHINESE = 2


class FontMissing(Exception):
    """No CJK font is installed, so no PDF can be drawn."""


def font_path() -> Path:
    for path in FONT_CANDIDATES:
        if path.exists():
            return path
    raise FontMissing("A PDF needs a Chinese font: install the fonts-noto-cjk package.")


def render(case: Case, notice: CorrectionNotice, applicant_id: str) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_margins(18, 18, 18)
    pdf.add_font("cjk", fname=str(font_path()), collection_font_number=SIMPLIFIED_CHINESE)
    pdf.add_page()
    pdf.set_title(f"一次性告知书 {case.number}")
    qr = io.BytesIO()
    segno.make(case.number, error="m").save(qr, kind="png", scale=6, border=1)
    qr.seek(0)
    pdf.image(qr, x=160, y=14, w=32)
    pdf.set_font("cjk", size=20)
    pdf.cell(0, 12, "材料补正一次性告知书", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=10)
    pdf.cell(0, 7, "甘井子区政务服务 · 云帮办", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(10)
    issued = notice.issued_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
    rows = [
        ("办件编号", case.number),
        ("申请人", f"{case.applicant_name}（{applicant_id}）"),
        ("申请事项", f"{case.item.name}（{case.item.code}）"),
        ("补正轮次", f"第 {notice.round} 次    告知时间 {issued}"),
        ("承诺时限", f"{case.item.promised_days:g} 个工作日"),
        ("法定时限", f"{case.item.statutory_days:g} 个工作日"),
    ]
    pdf.set_font("cjk", size=11)
    for label, value in rows:
        pdf.cell(28, 9, label, border=1)
        pdf.cell(0, 9, value, border=1, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)
    pdf.multi_cell(
        0,
        7,
        "您申请的上述事项，经材料预审，以下材料需要补正。根据《中华人民共和国行政许可法》"
        "第三十二条，现将需要补正的全部内容一次性告知如下：",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(2)
    for number, item in enumerate(notice.items, start=1):
        pdf.multi_cell(
            0,
            7,
            f"{number}. {item['name']}【{item['status_label']}】",
            new_x="LMARGIN",
            new_y="NEXT",
        )
        pdf.set_x(pdf.l_margin + 6)
        pdf.multi_cell(0, 7, str(item["reason"]), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.multi_cell(
        0,
        7,
        "请准备好补正材料后，到任一社区驿站自助终端输入或扫描办件编号，发起补正视频会话；"
        "也可持本告知书到区政务服务大厅办理。补正期间不计入办理时限。",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(8)
    pdf.cell(0, 7, f"告知人：{notice.issued_by}    甘井子区行政审批服务大厅（示例）")
    data = pdf.output()
    return bytes(data)
