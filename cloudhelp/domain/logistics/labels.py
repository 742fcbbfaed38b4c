"""The item label (100 × 60 mm, the common thermal label size: QR and the code in digits) and a
run's manifest (A4: every item, and lines for who handed over and who received), as PDFs drawn
with the notice's CJK font."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import segno

from cloudhelp.domain.logistics.codes import grouped
from cloudhelp.domain.notice_pdf import SIMPLIFIED_CHINESE, font_path

if TYPE_CHECKING:
    from fpdf import FPDF

LABEL_SIZE_MM = (100, 60)


@dataclass(frozen=True)
class Label:
    code: str
    kind: str  # its name: 证照, 原件送审 …
    case: str
    applicant: str  # masked: 王*福
    description: str
    origin: str
    destination: str


@dataclass(frozen=True)
class ManifestLine:
    code: str
    kind: str
    case: str
    applicant: str
    destination: str


def mask_name(name: str) -> str:
    """A name on a label: the first character and the last, the rest hidden (王*福, 李*)."""
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def _pdf(**kwargs: object) -> FPDF:
    from fpdf import FPDF  # here: only a worker process that draws a PDF pays the import

    pdf = FPDF(**kwargs)  # type: ignore[arg-type]
    pdf.add_font("cjk", fname=str(font_path()), collection_font_number=SIMPLIFIED_CHINESE)
    pdf.set_auto_page_break(False)
    return pdf


def _qr(code: str) -> io.BytesIO:
    out = io.BytesIO()
    segno.make(code, error="m").save(out, kind="png", scale=8, border=1)
    out.seek(0)
    return out


def label_pdf(label: Label) -> bytes:
    """One label, 100 mm wide and 60 mm high."""
    pdf = _pdf(orientation="P", unit="mm", format=LABEL_SIZE_MM)
    pdf.set_margins(4, 4, 4)
    pdf.add_page()
    pdf.set_title(f"{label.kind} {label.code}")
    pdf.image(_qr(label.code), x=4, y=4, w=36)
    pdf.set_font("cjk", size=11)
    pdf.set_xy(2, 41)
    pdf.cell(40, 6, grouped(label.code), align="C")
    pdf.set_font("cjk", size=16)
    pdf.set_xy(43, 4)
    pdf.cell(53, 9, label.kind)
    pdf.set_font("cjk", size=8.5)
    lines = [
        f"办件 {label.case}",
        f"申请人 {label.applicant}",
        f"内容 {label.description}",
        f"发出 {label.origin}",
    ]
    y = 14.0
    for line in lines:
        pdf.set_xy(43, y)
        pdf.multi_cell(54, 4.2, line, new_x="LEFT", new_y="NEXT")
        y = pdf.get_y() + 0.6
    pdf.set_font("cjk", size=11)
    pdf.set_xy(43, max(y, 40))
    pdf.multi_cell(54, 5.5, f"送至 {label.destination}")
    pdf.set_font("cjk", size=7)
    pdf.set_xy(4, 52)
    pdf.cell(92, 4, "云帮办 · 材料证照流转 · 凭取件码与身份证领取", align="C")
    return bytes(pdf.output())


def manifest_pdf(
    code: str, origin: str, destination: str, when: str, lines: list[ManifestLine]
) -> bytes:
    """A run's manifest on A4: its code as QR and digits, the hop, a table of its items."""
    pdf = _pdf(format="A4", unit="mm")
    pdf.set_margins(15, 15, 15)
    pdf.add_page()
    pdf.set_auto_page_break(True, 20)
    pdf.set_title(f"交接清单 {code}")
    pdf.image(_qr(code), x=165, y=12, w=30)
    pdf.set_font("cjk", size=8)
    pdf.set_xy(160, 42)
    pdf.cell(40, 4, grouped(code), align="C")
    pdf.set_xy(15, 15)
    pdf.set_font("cjk", size=18)
    pdf.cell(0, 10, "材料证照交接清单", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=10.5)
    for text in (
        f"清单号 {grouped(code)}",
        f"{origin} → {destination}",
        f"制单 {when}",
        f"共 {len(lines)} 件",
    ):
        pdf.cell(140, 6.5, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    widths = (10, 34, 24, 50, 20, 42)
    head = ("#", "追踪码", "类别", "办件编号", "申请人", "送至")
    pdf.set_font("cjk", size=9.5)
    for width, text in zip(widths, head, strict=True):
        pdf.cell(width, 8, text, border=1, align="C")
    pdf.ln()
    for number, line in enumerate(lines, start=1):
        cells = (
            str(number),
            grouped(line.code),
            line.kind,
            line.case,
            line.applicant,
            line.destination,
        )
        for width, text in zip(widths, cells, strict=True):
            pdf.cell(width, 8, text, border=1)
        pdf.ln()
    pdf.ln(12)
    pdf.set_font("cjk", size=10.5)
    pdf.cell(90, 8, "交出人签字：____________")
    pdf.cell(90, 8, "接收人签字：____________", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(90, 8, "交出时间：______________")
    pdf.cell(90, 8, "接收时间：______________")
    return bytes(pdf.output())
