"""The one-time correction notice as a PDF (fpdf2, with a system CJK font and a QR code)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import segno

from cloudhelp.domain.notice_text import Field, NoticeText

if TYPE_CHECKING:
    from fpdf import FPDF

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


def qr_png(data: str, scale: int = 6) -> io.BytesIO:
    """``data`` as a QR code (error correction M, a one-module border): a PNG to draw."""
    png = io.BytesIO()
    segno.make(data, error="m").save(png, kind="png", scale=scale, border=1)
    png.seek(0)
    return png


def render(text: NoticeText) -> bytes:
    """The notice as an A4 PDF, with the same words as the printable page."""
    from fpdf import FPDF  # here: only a worker process that draws a PDF pays the import

    pdf = FPDF(format="A4")
    pdf.set_margins(18, 18, 18)
    pdf.add_font("cjk", fname=str(font_path()), collection_font_number=SIMPLIFIED_CHINESE)
    pdf.add_page()
    pdf.set_title(text.document_title)
    pdf.image(qr_png(text.number), x=162, y=11, w=30)
    pdf.set_font("cjk", size=7)
    pdf.set_xy(157, 41.5)
    pdf.cell(40, 4, text.qr_caption, align="C")
    pdf.set_xy(pdf.l_margin, 18)
    pdf.set_font("cjk", size=20)
    pdf.cell(0, 12, text.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=10)
    pdf.cell(0, 7, text.subtitle, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(10)
    _fields(pdf, text)
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
    pdf.cell(0, 7, f"{text.issuer_line}    {text.office}")
    return bytes(pdf.output())


NAME_WIDTH = 22  # mm: the column of field names
FIELD_SIZE = 11  # pt
MIN_SHARED_SIZE = 9  # pt: below this a value gets a line of its own


def _fields(pdf: FPDF, text: NoticeText) -> None:
    """The table of the case's facts, laid out as on the page: two fields a row, or one
    field across the row."""
    width = pdf.w - pdf.l_margin - pdf.r_margin
    for row in text.field_rows:
        for line in _lines(pdf, row, width):
            value_width = (width - NAME_WIDTH * len(line)) / len(line)
            for index, field in enumerate(line):
                last = index == len(line) - 1
                pdf.set_font("cjk", size=FIELD_SIZE)
                pdf.cell(NAME_WIDTH, 9, field.name, border=1)
                _shrink_to(pdf, field.value, value_width)
                pdf.cell(
                    value_width, 9, field.value, border=1,
                    new_x="LMARGIN" if last else "RIGHT", new_y="NEXT" if last else "TOP",
                )  # fmt: skip
    pdf.set_font("cjk", size=FIELD_SIZE)


def _text_width(pdf: FPDF, value: str, size: float) -> float:
    pdf.set_font("cjk", size=size)
    return float(pdf.get_string_width(value)) + 2 * pdf.c_margin


def _lines(pdf: FPDF, row: list[Field], width: float) -> list[list[Field]]:
    """A row of two fields on one line; a value too long for half a line (a long name) puts
    each field on a line of its own."""
    half = (width - NAME_WIDTH * len(row)) / len(row)
    if all(_text_width(pdf, f.value, MIN_SHARED_SIZE) <= half for f in row):
        return [row]
    return [[field] for field in row]


def _shrink_to(pdf: FPDF, value: str, width: float) -> None:
    """A smaller font for a value too long for its cell, never below 6 pt."""
    size = float(FIELD_SIZE)
    while size > 6 and _text_width(pdf, value, size) > width:
        size -= 0.5
