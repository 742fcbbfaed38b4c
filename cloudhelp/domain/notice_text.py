"""The words of the one-time correction notice (一次性告知书), written once for the printable page
(web/templates/notice.html) and the PDF (notice_pdf.render) alike: titles, field names, the
legal text, the footer. Neither writes a word of the notice itself. The notice is a legal
document in Chinese whatever the reader's language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloudhelp.core.clock import LOCAL_TZ, local_minute
from cloudhelp.store.models import Case, CorrectionNotice, Station

TITLE = "材料补正一次性告知书"
SUBTITLE = "甘井子区政务服务 · 云帮办"
OFFICE = "甘井子区行政审批服务大厅（示例）"
INTRO = (
    "您申请的上述事项，经材料预审，以下材料需要补正。根据《中华人民共和国行政许可法》第三十二条，"
    "现将需要补正的全部内容一次性告知如下："
)
CLOSING = (
    "请按上述要求准备好补正材料后，到任一社区驿站自助终端输入或扫描办件编号，并输入申请时所留手机号"
    "或身份证号的后四位，发起补正视频会话；"
    "也可持本告知书到区政务服务大厅办理。时限自受理之日起计算，补正期间不计入办理时限。"
)
# The notice's fields, in the order and rows both the page and the PDF lay out.
FIELD_NAMES = {
    "number": "办件编号",
    "applicant": "申请人",
    "item": "申请事项",
    "round": "补正轮次",
    "issued": "告知时间",
    "promised": "承诺时限",
    "statutory": "法定时限",
    "collect": "证照领取",
}
FIELD_ROWS = (("number", "applicant"), ("item",), ("round", "issued"), ("promised", "statutory"),
              ("collect",))  # fmt: skip
ISSUER_NAME = "告知人"
FORMS = {
    "original": "原件",
    "copy": "复印件",
    "original_and_copy": "原件及复印件",
    "electronic": "电子材料",
}


@dataclass(frozen=True)
class NoticeLine:
    """One material to correct: its name, 需补正/缺少, and what the applicant must do."""

    name: str
    status_label: str
    what_to_do: str


@dataclass(frozen=True)
class Field:
    """One field of the notice's table: ``key`` (a FIELD_NAMES key), its name and its value."""

    key: str
    name: str
    value: str


@dataclass(frozen=True)
class NoticeText:
    title: str
    subtitle: str
    number: str
    applicant: str
    item: str
    round: int
    issued: datetime
    promised: str
    statutory: str
    collect: str
    intro: str
    lines: list[NoticeLine]
    closing: str
    issuer: str
    office: str

    @property
    def round_text(self) -> str:
        return f"第 {self.round} 次"

    @property
    def issued_text(self) -> str:
        return local_minute(self.issued)

    @property
    def document_title(self) -> str:
        """The page's title and the PDF's: 一次性告知书 · <case number>."""
        return f"一次性告知书 · {self.number}"

    @property
    def qr_caption(self) -> str:
        """Under the QR code, which holds the case number."""
        return f"{FIELD_NAMES['number']} {self.number}"

    @property
    def issuer_line(self) -> str:
        return f"{ISSUER_NAME}：{self.issuer}"

    @property
    def field_rows(self) -> list[list[Field]]:
        """The table of the case's facts, row by row (FIELD_ROWS)."""
        values = {
            "number": self.number,
            "applicant": self.applicant,
            "item": self.item,
            "round": self.round_text,
            "issued": self.issued_text,
            "promised": self.promised,
            "statutory": self.statutory,
            "collect": self.collect,
        }
        return [[Field(key, FIELD_NAMES[key], values[key]) for key in row] for row in FIELD_ROWS]


def what_to_do(entry: dict[str, Any]) -> str:
    """The reason the reviewer gave; for a missing material without one, what to bring.

    Older notices stored the status label (缺少) as the reason of a missing material: that is
    not repeated."""
    reason = str(entry.get("reason") or "").strip()
    if reason and reason != entry.get("status_label"):
        return reason
    if entry.get("status") == "missing":
        form = FORMS.get(str(entry.get("form") or ""), "")
        copies = entry.get("copies")
        amount = f"（{form} {copies} 份）" if form and copies else ""
        return f"请补充提交该材料{amount}。"
    return "请按要求更正后重新提交。"


def collect_text(case: Case, station: Station | None) -> str:
    """When and where the certificate will be ready: within the promised limit from
    acceptance, at ``station`` (logistics.pickup.pickup_station; docs/logistics.md)."""
    when = f"受理后 {case.item.promised_days:g} 个工作日内办结"
    if station is None:
        return f"{when}，证照送至您办理时所在的驿站，凭取件码和身份证领取"
    where = f"{station.name}（{station.address}）" if station.address else station.name
    if station.parent_id is None:  # the hall itself
        return f"{when}，凭取件码和身份证在{where}领取，也可请工作人员送至您附近的驿站"
    return f"{when}，证照送至{where}，凭取件码和身份证领取"


def notice_text(
    case: Case,
    notice: CorrectionNotice,
    applicant_id: str,
    issuer_name: str,
    collect_at: Station | None = None,
) -> NoticeText:
    """Everything the notice says, for ``notice.html`` and ``notice_pdf.render``."""
    return NoticeText(
        title=TITLE,
        subtitle=SUBTITLE,
        number=case.number,
        applicant=f"{case.applicant_name}（{applicant_id}）",
        item=f"{case.item.name}（{case.item.code}）",
        round=notice.round,
        issued=notice.issued_at.astimezone(LOCAL_TZ),
        promised=f"{case.item.promised_days:g} 个工作日",
        statutory=f"{case.item.statutory_days:g} 个工作日",
        collect=collect_text(case, collect_at if collect_at is not None else case.station),
        intro=INTRO,
        lines=[
            NoticeLine(str(e["name"]), str(e["status_label"]), what_to_do(e)) for e in notice.items
        ],
        closing=CLOSING,
        issuer=issuer_name,
        office=OFFICE,
    )
