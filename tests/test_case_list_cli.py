"""``cloudhelp case list`` paging and filters, and ``case show`` wording, as a person runs them."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from cloudhelp.core.clock import LOCAL_TZ
from tests.helpers import run_cli


def test_case_list_keeps_filters_accepts_labels_and_stops_past_the_end(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cases.db'}"
    made = run_cli("demo", "--db", db, "--history", "5", "--per-day", "20")
    assert made.returncode == 0, made.stderr
    by_code = run_cli("case", "list", "--status", "correction_needed", "--json", "--limit", "1000",
                      "--db", db)  # fmt: skip
    waiting = json.loads(by_code.stdout)
    assert waiting["total"] >= 2, waiting["total"]

    # The label the list prints selects the same cases as the code.
    by_label = run_cli(
        "case", "list", "--status", "待补正", "--json", "--limit", "1000", "--db", db
    )
    assert by_label.returncode == 0, by_label.stderr
    assert json.loads(by_label.stdout)["cases"] == waiting["cases"]

    # The next-page hint keeps the filter and the page size.
    first = run_cli("case", "list", "--status", "correction_needed", "--limit", "1", "--db", db)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert len(lines) == 3 and "待补正" in lines[0]
    # Its date is the district's day the case was opened, not the UTC one.
    newest = waiting["cases"][0]
    opened = datetime.fromisoformat(newest["created_at"]).astimezone(LOCAL_TZ).date()
    assert lines[0].split()[:2] == [newest["number"], opened.isoformat()]
    hint = "Next page: cloudhelp case list --status correction_needed --limit 1 --page 2"
    assert lines[-1] == hint
    second = run_cli(*lines[-1].split()[3:], "--db", db)
    assert second.returncode == 0 and "(page 2 of" in second.stdout

    # Past the end: said so, on stderr, with a non-zero exit (text and JSON alike).
    for extra in ((), ("--json",)):
        past = run_cli("case", "list", "--page", "999", *extra, "--db", db)
        assert past.returncode == 1 and past.stdout == ""
        assert "page 999 is past the end" in past.stderr, past.stderr

    unknown = run_cli("case", "list", "--status", "补正中", "--db", db)
    assert unknown.returncode == 1 and "correction_needed (待补正)" in unknown.stderr

    shown = run_cli("case", "show", waiting["cases"][0]["number"], "--db", db)
    assert shown.returncode == 0, shown.stderr
    assert " 1 working days" not in shown.stdout
    assert "working day " in shown.stdout or "working days " in shown.stdout
