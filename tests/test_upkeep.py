"""`digest preflight` and the systemd units in examples/: restart with backoff and no
start limit that gives up, UMask=0077, hardening that `systemd-analyze security` rates
below 4.0, a preflight that checks secrets and the database."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from digest.cli import cli
from tests.dbfixtures import write_config
from tests.services import unavailable
from tests.web.conftest import WEB

EXAMPLES = Path(__file__).parent.parent / "examples"
UNITS = ("digest.service", "digest-web.service")


def service_keys(name: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in (EXAMPLES / name).read_text("utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.mark.parametrize("name", UNITS)
def test_the_units_keep_running_and_are_private(name: str) -> None:
    keys = service_keys(name)
    assert keys["StartLimitIntervalSec"] == ["0"], "no start limit that gives up"
    assert keys["Restart"] == ["on-failure"]
    assert keys["UMask"] == ["0077"]
    assert "RestartMaxDelaySec" in keys and "RestartSec" in keys
    (pre,) = keys["ExecStartPre"]
    assert pre.split()[1] == "preflight"
    assert keys["NoNewPrivileges"] == ["yes"] and keys["ProtectSystem"] == ["strict"]


@pytest.mark.parametrize("name", UNITS)
def test_systemd_analyze_rates_the_units_below_4(name: str) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        unavailable("systemd-analyze is not installed here (Debian: systemd)")
    done = subprocess.run(
        [tool, "security", "--offline=yes", str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout + done.stderr)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) < 4.0


def preflight(path: Path, *extra: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(path), "preflight", *extra])


def test_preflight_passes_when_secrets_folders_and_database_are_fine(
    make_settings: Any, tmp_path: Path
) -> None:
    settings = make_settings(WEB + f'[publish]\noutput_dir = "{tmp_path}/public"\n')
    result = preflight(settings.path, "--web")
    assert result.exit_code == 0, result.output
    assert "✓ secrets and folders" in result.output and "ready" in result.output


def test_preflight_names_a_missing_secret(make_settings: Any) -> None:
    settings = make_settings("")
    result = preflight(settings.path)
    assert result.exit_code == 78, result.output
    assert "✗ [web] secret_key: [web] secret_key is not set" in result.output


def test_preflight_says_the_database_is_not_there_yet(tmp_path: Path) -> None:
    url = "postgresql+psycopg://digest@127.0.0.1:9/digest?connect_timeout=2"
    path = write_config(tmp_path, url, WEB)
    result = preflight(path)
    assert result.exit_code == 75, result.output
    assert "✗ database postgresql+psycopg://digest@127.0.0.1:9/digest" in result.output
