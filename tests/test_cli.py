"""The command line as an operator uses it: init, sources, collect, exit statuses, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from digest.cli import cli
from tests.httpserver import LocalServer

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Migration Governance</title>
<item><title>Global Skill Partnerships</title><link>https://example.org/gsp</link></item>
</channel></rss>"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner: CliRunner, config: Path, *args: str) -> Result:
    return runner.invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


INIT = ["--title", "Town Digest", "--sender", "Town <digest@example.org>"]
INIT += ["--base-url", "https://digest.example.org"]


@pytest.fixture
def config(tmp_path: Path, runner: CliRunner, database_url: str, engine: object) -> Path:
    result = runner.invoke(cli, ["init", str(tmp_path), *INIT, "--database", database_url])
    assert result.exit_code == 0, result.output
    path = tmp_path / "digest.toml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("allow_networks = []", 'allow_networks = ["127.0.0.0/8"]')
    text = text.replace("per_host_interval_seconds = 1.0", "per_host_interval_seconds = 0.0")
    path.write_text(text, encoding="utf-8")
    return path


def test_init_writes_a_commented_config_and_refuses_to_overwrite(
    tmp_path: Path, runner: CliRunner
) -> None:
    assert runner.invoke(cli, ["init", str(tmp_path), *INIT]).exit_code == 0
    text = (tmp_path / "digest.toml").read_text(encoding="utf-8")
    assert "# How often sources are fetched" in text
    assert (tmp_path / "digest.db").exists()
    again = runner.invoke(cli, ["init", str(tmp_path), *INIT])
    assert again.exit_code == 1
    assert "exists already" in again.output


def test_sources_add_list_check_collect_remove(
    config: Path, runner: CliRunner, http_server: LocalServer
) -> None:
    http_server.route("/feed.rss", body=RSS, headers={"Content-Type": "application/rss+xml"})
    http_server.route("/broken", status=500, body=b"oops")
    added = run(
        runner,
        config,
        "sources",
        "add",
        "governance",
        http_server.url("/feed.rss"),
        "--language",
        "en",
        "--topics",
        "governance,policy",
    )
    assert added.exit_code == 0, added.output
    assert (
        run(runner, config, "sources", "add", "broken", http_server.url("/broken")).exit_code == 0
    )
    listed = run(runner, config, "sources", "list")
    assert "governance" in listed.output and "never" in listed.output

    checked = run(runner, config, "sources", "check", "governance")
    assert checked.exit_code == 0
    assert "“Migration Governance”: 1 items" in checked.output

    collected = run(runner, config, "collect")
    assert collected.exit_code == 1  # one source failed, documented
    assert "governance" in collected.output and "1 new" in collected.output
    assert "broken" in collected.output and "500" in collected.output
    assert "2 sources, 1 failed" in collected.output

    health = run(runner, config, "sources", "list")
    assert "failing x1" in health.output and "last error:" in health.output

    assert run(runner, config, "sources", "remove", "broken").exit_code == 0
    assert run(runner, config, "collect", "--all").exit_code == 0


def test_errors_name_the_culprit_and_exit_one(config: Path, tmp_path: Path) -> None:
    def digest(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "digest", *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
        )

    missing = digest("--config", str(tmp_path / "nope.toml"), "collect")
    assert missing.returncode == 1
    assert "run `digest init" in missing.stderr
    unknown = digest("--config", str(config), "sources", "remove", "nope")
    assert unknown.returncode == 1
    assert "no source named 'nope'" in unknown.stderr
    bad_path = digest("--config", str(config), "sources", "add", "x", "feeds/none.xml")
    assert bad_path.returncode == 1
    assert "no such file" in bad_path.stderr
    assert digest("--help").returncode == 0
    assert digest("collect", "--help").stdout.count("--as-of") == 1


def test_as_of_must_be_a_date(config: Path, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--config", str(config), "collect", "--as-of", "monday"])
    assert result.exit_code == 2
    assert "is not an ISO 8601 date-time" in result.output
