"""The ``cloudhelp`` command, run as a person would run it."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from tests.helpers import run_cli, serve_and_read_url, start_cli


def test_demo_export_and_import(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    demo = run_cli("demo", "--db", db)
    assert demo.returncode == 0, demo.stderr
    assert "service items (sample data)" in demo.stdout
    assert "wangli" in demo.stdout and "cloudhelp-demo" in demo.stdout
    assert "QG-01" in demo.stdout and "/kiosk?enrol=" in demo.stdout
    listed = json.loads(run_cli("case", "list", "--json", "--db", db).stdout)
    assert {c["status"]["code"] for c in listed} == {
        "pre_review", "correction_needed", "awaiting_acceptance", "accepted", "concluded",
        "delivered", "not_accepted",
    }  # fmt: skip
    waiting = next(c for c in listed if c["status"]["code"] == "correction_needed")
    assert waiting["notices"][0]["items"][0]["reason"] == "申请人未签字"
    assert waiting["checklists"][0]["round"] == 1
    again = run_cli("demo", "--db", db)  # idempotent: no second set of cases
    assert again.returncode == 0 and "demo cases" not in again.stdout

    exported = run_cli("catalog", "export", "--db", db)
    assert exported.returncode == 0, exported.stderr
    data = json.loads(exported.stdout)
    assert len(data["items"]) >= 79

    csv_file = tmp_path / "catalog.csv"
    as_csv = run_cli("catalog", "export", "--db", db, "--format", "csv", "-o", str(csv_file))
    assert as_csv.returncode == 0 and as_csv.stdout == ""
    other = f"sqlite:///{tmp_path / 'other.db'}"
    imported = run_cli("catalog", "import", str(csv_file), "--db", other)
    assert imported.returncode == 0, imported.stderr
    assert f"Imported {len(data['items'])} items, 7 departments and 6 categories" in imported.stdout
    again = run_cli("catalog", "export", "--db", other)
    assert json.loads(again.stdout) == data


def test_bad_catalog_file_is_rejected_with_the_record_named(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "departments": [{"code": "D1", "name": "部门"}],
                "categories": [{"code": "c1", "letter": "A", "name": "类别"}],
                "items": [
                    {"code": "I-1", "name": "事项", "department": "D1", "category": "c1",
                     "statutory_days": 5, "promised_days": 9, "tiers": ["district"]},
                ],
            }
        )
    )  # fmt: skip
    result = run_cli("catalog", "import", str(bad), "--db", db)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "rejected and nothing was changed" in result.stderr
    assert "items[0] (code I-1)" in result.stderr and "exceeds statutory_days" in result.stderr
    exported = run_cli("catalog", "export", "--db", db)
    assert json.loads(exported.stdout)["items"] == []


def test_unreachable_database_is_one_sentence() -> None:
    result = run_cli("db", "upgrade", "--db", "postgresql://u:pw@127.0.0.1:1/x")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cloudhelp: Cannot connect to the database")
    assert "pw" not in lines[0]


def test_db_upgrade_reports_revision(tmp_path: Path) -> None:
    result = run_cli("db", "upgrade", "--db", f"sqlite:///{tmp_path / 'y.db'}")
    assert result.returncode == 0, result.stderr
    assert "is at revision" in result.stdout and "None" not in result.stdout


def test_serve_with_config_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "cloudhelp.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "conf.db"}"\nport = 0\n')
    assert run_cli("demo", env={"CLOUDHELP_CONFIG": str(config)}).returncode == 0
    process = start_cli("serve", env={"CLOUDHELP_CONFIG": str(config)})
    try:
        url = serve_and_read_url(process)
        with urllib.request.urlopen(url + "api/v1/items/SCJG-004") as response:
            item = json.loads(response.read())
        assert item["promised_days"] == 0.5
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    result = run_cli("db", "upgrade", "--config", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_demo_with_history_fills_the_reports_once(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'history.db'}"
    first = run_cli("demo", "--db", db, "--history", "30", "--per-day", "30")
    assert first.returncode == 0, first.stderr
    made = int(first.stdout.split(" tickets of history")[0].rsplit(maxsplit=1)[-1])
    assert made > 100  # at least 12 working days in any 30 (Golden Week included) at ~30 a day
    again = run_cli("demo", "--db", db, "--history", "30", "--per-day", "30")
    assert again.returncode == 0 and "  0 tickets of history" in again.stdout
    bad = run_cli("demo", "--db", db, "--history", "0")
    assert bad.returncode == 2 and "--history" in bad.stderr
