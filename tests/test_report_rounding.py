"""The reports page and its exports round rates by one rule (cloudhelp/report_routes.percent)."""

from __future__ import annotations

import json
import shutil
import subprocess

from cloudhelp.http.report_routes import localized_table, percent


def page_percent(rates: list[float]) -> list[str]:
    """What web/static/js/reports.js shows for each rate, computed by a real JS engine."""
    node = shutil.which("node")
    assert node is not None, "node is needed to run the page's formatter"
    script = (
        "const r = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify(r.map((v) => `${(v * 100).toFixed(1)}%`)));"
    )
    done = subprocess.run([node, "-e", script], input=json.dumps(rates), capture_output=True,
                          text=True, check=True, timeout=60)  # fmt: skip
    return json.loads(done.stdout)


def test_csv_cells_and_page_agree_on_every_rate() -> None:
    # Every answered/total a day or a range can produce, up to 1,500 tickets.
    rates = sorted({k / n for n in range(1, 1501, 7) for k in range(n + 1)})
    body = {"tables": {"day": [{"day": f"r{i}", "service_level": r} for i, r in enumerate(rates)]}}
    _, cells, fields = localized_table(body, "rows", "day", "zh-CN")
    column = fields.index("service_level")
    exported = [f"{percent(line[column])}%" for line in cells]  # as csv_response writes it
    shown = page_percent(rates)
    mismatched = [(r, s, e) for r, s, e in zip(rates, shown, exported, strict=True) if s != e]
    assert not mismatched, mismatched[:5]
