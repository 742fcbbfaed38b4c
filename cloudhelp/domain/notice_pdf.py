"""The one-time correction notice as a PDF (fpdf2, with a system CJK font and a QR code)."""

from __future__ import annotations

import io
from pathlib import Path

import segno
from fpdf import FPDF

from cloudhelp.domain.notice_text import NoticeText

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


def render(text: NoticeText) -> bytes:
    """The notice as an A4 PDF, with the same words as the printable page."""
    pdf = FPDF(format="A4")
    pdf.set_margins(18, 18, 18)
    pdf.add_font("cjk", fname=str(font_path()), collection_font_number=SIMPLIFIED_CHINESE)
    pdf.add_page()
    pdf.set_title(f"一次性告知书 {text.number}")
    qr = io.BytesIO()
    segno.make(text.number, error="m").save(qr, kind="png", scale=6, border=1)
    qr.seek(0)
    pdf.image(qr, x=160, y=14, w=32)
    pdf.set_font("cjk", size=20)
    pdf.cell(0, 12, text.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=10)
    pdf.cell(0, 7, text.subtitle, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(10)
    rows = [
        ("办件编号", text.number),
        ("申请人", text.applicant),
        ("申请事项", text.item),
        ("补正轮次", f"{text.round_text}    告知时间 {text.issued_text}"),
        ("承诺时限", text.promised),
        ("法定时限", text.statutory),
    ]
    pdf.set_font("cjk", size=11)
    for label, value in rows:
        pdf.cell(28, 9, label, border=1)
        pdf.cell(0, 9, value, border=1, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)
    pdf.multi_cell(0, 7, text.intro, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    for number, line in enumerate(text.lines, start=1):
        pdf.multi_cell(
            0, 7, f"{number}. {line.name}【{line.status_label}】", new_x="LMARGIN", new_y="NEXT"
        )
        pdf.set_x(pdf.l_margin + 6)
        pdf.multi_cell(0, 7, line.what_to_do, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.multi_cell(0, 7, text.closing, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.cell(0, 7, f"告知人：{text.issuer}    {text.office}")
    return bytes(pdf.output())
