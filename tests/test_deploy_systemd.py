"""The systemd units and environment file in deploy/systemd (issue 14).

``systemd-analyze verify`` checks each unit as systemd would load it (unknown keys, bad values,
missing programs), with the install path of the ``cloudhelp`` program templated to this
checkout's; every ``cloudhelp`` command line in the units must parse as a real command. The
environment file is read the way systemd reads it (single-quoted values) and must give valid
settings that agree with the nginx site and the coturn config beside it.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cloudhelp.cli.parser import build_parser, command_of
from cloudhelp.core.config import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
INSTALLED = "/opt/cloudhelp/venv/bin/cloudhelp"
HERE = str(Path(sys.executable).parent / "cloudhelp")  # this checkout's, installed by pip -e


def _unit_lines(path: Path, key: str) -> list[str]:
    return [
        line.split("=", 1)[1].strip()
        for line in path.read_text().splitlines()
        if line.startswith(f"{key}=")
    ]


def _verify(tmp_path: Path, *names: str) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing (Debian package systemd)")
    for name in names:
        text = (UNITS / name).read_text()
        if name.endswith(".service"):
            assert INSTALLED in text, name
        (tmp_path / name).write_text(text.replace(INSTALLED, HERE))
    done = subprocess.run(
        [analyze, "verify", *(str(tmp_path / name) for name in names)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    # Unknown keys and bad values are only warnings (exit 0): none is allowed.
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr


def _cloudhelp_commands(unit: Path) -> list[list[str]]:
    commands = []
    for key in ("ExecStartPre", "ExecStart", "ExecStartPost", "ExecReload"):
        for line in _unit_lines(unit, key):
            words = shlex.split(line)
            if words[0] == INSTALLED:
                commands.append(words[1:])
    return commands


def _assert_real_command(words: list[str]) -> None:
    args = build_parser().parse_args(words)  # a usage error exits (SystemExit 2)
    assert callable(command_of(args))


def test_cloudhelp_service_verifies_and_runs_serve(tmp_path: Path) -> None:
    _verify(tmp_path, "cloudhelp.service")
    unit = UNITS / "cloudhelp.service"
    commands = _cloudhelp_commands(unit)
    assert commands == [["serve"]]
    for words in commands:
        _assert_real_command(words)
    assert _unit_lines(unit, "ExecReload") == ["/bin/kill -HUP $MAINPID"]  # TLS reload
    assert _unit_lines(unit, "User") == ["cloudhelp"]
    assert _unit_lines(unit, "StateDirectory") == ["cloudhelp"]
    assert _unit_lines(unit, "EnvironmentFile") == ["/etc/cloudhelp/cloudhelp.env"]
    for hardening in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp"):
        assert _unit_lines(unit, hardening) in (["yes"], ["strict"]), hardening


def test_backup_service_and_timer_verify_and_run_cloudhelp_backup(tmp_path: Path) -> None:
    _verify(tmp_path, "cloudhelp-backup.service", "cloudhelp-backup.timer")
    commands = _cloudhelp_commands(UNITS / "cloudhelp-backup.service")
    assert commands == [["backup", "/var/backups/cloudhelp"]]
    for words in commands:
        _assert_real_command(words)  # `cloudhelp backup` (docs/backups.md)
    assert _unit_lines(UNITS / "cloudhelp-backup.timer", "Persistent") == ["true"]


def _read_env_file(path: Path) -> dict[str, str]:
    """The variables of an EnvironmentFile, read by a POSIX shell: for single-quoted values
    and plain words (all this file uses) its rules and systemd's are the same."""
    done = subprocess.run(
        ["env", "-i", "sh", "-c", 'set -a; . "$0"; exec env -0', str(path)],
        capture_output=True, text=True, check=True, timeout=10,
    )  # fmt: skip
    pairs = (item.split("=", 1) for item in done.stdout.split("\0") if "=" in item)
    return {key: value for key, value in pairs if key.startswith("CLOUDHELP_")}


def test_environment_file_gives_valid_settings_matching_nginx_and_coturn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env_file = UNITS / "cloudhelp.env"
    values = _read_env_file(env_file)
    fields = set(Settings.model_fields)
    # Every variable, the commented-out ones (HTTPS without nginx) too, names a real setting.
    named = set(re.findall(r"^#?(CLOUDHELP_[A-Z_]+)=", env_file.read_text(), re.MULTILINE))
    assert values.keys() <= named
    for name in named:
        assert name.removeprefix("CLOUDHELP_").lower() in fields, name
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert str(settings.data_dir) == "/var/lib/cloudhelp"  # the unit's StateDirectory
    assert settings.database_url and settings.database_url.startswith("postgresql://")
    # nginx proxies to this address and port, from 127.0.0.1, which is trusted.
    site = (DEPLOY / "nginx" / "cloudhelp.conf").read_text()
    assert f"server {settings.host}:{settings.port};" in site
    assert settings.trusted_proxies == ["127.0.0.1"]
    # The TURN URLs name coturn's ports: UDP and TCP on listening-port, TLS on the TLS port.
    coturn = (DEPLOY / "coturn" / "turnserver.conf").read_text()
    port = re.search(r"^listening-port=(\d+)$", coturn, re.MULTILINE)
    tls_port = re.search(r"^tls-listening-port=(\d+)$", coturn, re.MULTILINE)
    assert port and tls_port
    host = "turn.example.gov.cn"
    assert settings.turn_urls == [
        f"turn:{host}:{port[1]}?transport=udp",
        f"turn:{host}:{port[1]}?transport=tcp",
        f"turns:{host}:{tls_port[1]}?transport=tcp",
    ]
    assert settings.turn_secret and "use-auth-secret" in coturn.splitlines()
    assert f"realm={host}" in coturn.splitlines()
