"""The one-time correction notice has one text (cloudhelp/domain/notice_text.py) that the
printable page and the PDF both draw: the template writes no word of the notice itself."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from markupsafe import Markup

from cloudhelp.domain import notice_pdf, notice_text
from cloudhelp.http.pages import make_environment
from cloudhelp.store.models import Case, CorrectionNotice, ServiceItem, Station
from web import TEMPLATES_DIR

CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]+")
# The page's own controls, not the notice's words (they are not printed).
PAGE_CONTROLS = {"打印", "下载"}
LONG_NAME = "阿卜杜热合曼·买买提艾力江·吐尔逊巴克阿卜杜热合曼·买买提艾力江·吐尔逊"


def _text(name: str = "刘海生") -> notice_text.NoticeText:
    item = ServiceItem(
        code="NYNC-002", name="渔业捕捞许可证换发", promised_days=1, statutory_days=20
    )
    station = Station(code="DLW-QG", name="前关社区驿站", address="大连湾街道前关村", parent_id=2)
    case = Case(number="210211-20261128-0001", applicant_name=name, item=item, station=station)
    notice = CorrectionNotice(
        round=2,
        issued_at=datetime(2026, 11, 28, 2, 5, tzinfo=UTC),
        items=[
            {"name": "渔业捕捞许可证原证", "status": "needs_correction",
             "status_label": "需补正", "reason": "原证未交回"},
            {"name": "船舶检验证书", "status": "missing", "status_label": "缺少", "form": "copy",
             "copies": 1},
        ],
    )  # fmt: skip
    return notice_text.notice_text(case, notice, "210211********123X", "赵刚")


def test_the_template_writes_no_word_of_the_notice() -> None:
    template = (TEMPLATES_DIR / "notice.html").read_text(encoding="utf-8")
    without_comments = re.sub(r"\{#.*?#\}", "", template, flags=re.S)
    assert set(CJK.findall(without_comments)) <= PAGE_CONTROLS


def test_the_page_shows_every_word_of_the_text() -> None:
    text = _text()
    html = (
        make_environment()
        .get_template("notice.html")
        .render(n=text, qr=Markup("<svg></svg>"), pdf_url="/notices/x/2.pdf")
    )
    words = [text.document_title, text.title, text.subtitle, text.qr_caption, text.intro,
             text.closing, text.issuer_line, text.office]  # fmt: skip
    words += [f for row in text.field_rows for field in row for f in (field.name, field.value)]
    words += [w for line in text.lines for w in (line.name, line.status_label, line.what_to_do)]
    missing = [w for w in words if str(Markup.escape(w)) not in html]
    assert not missing
    assert [f.name for row in text.field_rows for f in row] == list(
        notice_text.FIELD_NAMES.values()
    )
    assert "第 2 次" in html and "2026-11-28 10:05" in html  # local time, Asia/Shanghai
    assert "请补充提交该材料（复印件 1 份）。" in html
    assert "受理后 1 个工作日内办结，证照送至前关社区驿站（大连湾街道前关村）" in html


@pytest.mark.parametrize("name", ["刘海生", LONG_NAME])
def test_the_pdf_draws_the_same_text(name: str) -> None:
    try:
        notice_pdf.font_path()
    except notice_pdf.FontMissing:
        pytest.fail("the test machine has fonts-noto-cjk (scripts/test.sh installs it)")
    text = _text(name)
    pdf = notice_pdf.render(text)
    assert pdf.startswith(b"%PDF-")
    title = text.document_title.encode("utf-16-be").hex().encode()
    assert b"/Title <feff" + title + b">" in pdf  # the page's <title>, as the PDF's
