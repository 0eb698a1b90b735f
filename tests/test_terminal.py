"""Terminals and logs are safe: nothing a source sends reaches them as an escape sequence."""

from __future__ import annotations

import logging
from pathlib import Path

from click.testing import CliRunner

from digest.pipeline.logfmt import JsonFormatter, KeyValueFormatter
from digest.terminal import printable
from tests.httpserver import LocalServer
from tests.test_cli import run

pytest_plugins = ["tests.test_cli"]  # its runner and config fixtures

ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m\x9b1;1H\x1b]8;;https://evil/\x1b\\\u202e"


def test_printable_removes_csi_osc_controls_and_overrides() -> None:
    assert printable(f"a{ESCAPES}b") == "aredb"
    assert printable("tab\tand\nline") == "tab\tand\nline"
    assert printable("one\ntwo", newlines=False) == "one two"
    assert printable("\x00\x07\x08\x7f\x85ok") == "ok"
    assert printable("naïve café — 日本") == "naïve café — 日本"


def test_log_lines_carry_no_escapes() -> None:
    record = logging.LogRecord(
        "digest.collect", logging.WARNING, __file__, 1, "%s", (ESCAPES,), None
    )
    for formatter in (KeyValueFormatter(), JsonFormatter()):
        line = formatter.format(record)
        assert "\x1b" not in line and "\x9b" not in line and "\u202e" not in line
        assert "\n" not in line


def test_the_cli_prints_no_escape_from_a_source(
    runner: CliRunner, config: Path, http_server: LocalServer
) -> None:
    feed = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Evil{ESCAPES} feed</title><item><title>Item{ESCAPES}</title>"
        "<link>https://example.org/1</link></item></channel></rss>"
    ).encode()
    http_server.route("/evil.rss", body=feed, headers={"Content-Type": "application/rss+xml"})
    http_server.route("/gone", status=404, body=ESCAPES.encode())
    assert (
        run(runner, config, "sources", "add", "evil", http_server.url("/evil.rss")).exit_code == 0
    )
    assert run(runner, config, "sources", "add", "gone", http_server.url("/gone")).exit_code == 0
    outputs = [
        run(runner, config, "sources", "check").output,
        run(runner, config, "collect", "--all").output,
        run(runner, config, "sources", "list").output,
    ]
    for output in outputs:
        assert "evil" in output and "gone" in output
        assert "\x1b" not in output and "\x9b" not in output and "\u202e" not in output
        assert "\x07" not in output
