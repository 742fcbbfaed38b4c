"""The built wheel carries both packages, web/ and the data files, and serves from them."""

from __future__ import annotations

import ast
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

from tests.helpers import ROOT, run_cli, serve_and_read_url, start_cli


def test_wheel_serves_pages_and_static_files(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("cloudhelp-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in [
        "cloudhelp/cli/__init__.py", "signaling/__init__.py", "web/templates/home.html",
        "web/static/css/app.css", "web/i18n/zh-CN.json", "web/i18n/en.json",
        "cloudhelp/data/sample_catalog.json", "cloudhelp/data/sample_network.json",
        "cloudhelp/store/migrations/env.py", "web/static/vendor/echarts/echarts.min.js",
        "web/static/vendor/echarts/LICENSE", "web/templates/board.html", "web/static/js/board.js",
    ]:  # fmt: skip
        assert expected in names, expected
    assert any(n.startswith("cloudhelp/store/migrations/versions/0001") for n in names)
    assert not any(n.startswith("tests/") for n in names)

    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    db = f"sqlite:///{tmp_path / 'w.db'}"
    where = run_cli("demo", "--db", db, pythonpath=unpacked, cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    process = start_cli("serve", "--db", db, "--port", "0", pythonpath=unpacked, cwd=tmp_path)
    try:
        url = serve_and_read_url(process)
        with urllib.request.urlopen(url) as response:
            assert "云帮办" in response.read().decode()
        with urllib.request.urlopen(url + "static/css/app.css") as response:
            assert response.status == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
    check = subprocess.run(
        [sys.executable, "-c", "import cloudhelp, web; print(cloudhelp.__file__, web.__file__)"],
        capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(unpacked)},
    )  # fmt: skip
    assert str(unpacked) in check.stdout.split()[0] and str(unpacked) in check.stdout.split()[1]


def test_signaling_never_imports_cloudhelp() -> None:
    for path in (ROOT / "signaling").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n.split(".")[0] == "cloudhelp" for n in names), path


def test_message_catalogs_have_the_same_keys() -> None:
    import json

    zh = json.loads((ROOT / "web/i18n/zh-CN.json").read_text(encoding="utf-8"))
    en = json.loads((ROOT / "web/i18n/en.json").read_text(encoding="utf-8"))
    assert set(zh) == set(en)
    assert all(value.strip() for value in (*zh.values(), *en.values()))
