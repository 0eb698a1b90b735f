"""Logs for journald and nothing on standard output: syslog priorities ("<3>") when
standard error is the journal, the web app in the same format, Babel's catalogue
complaints in the log rather than printed."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from digest.pipeline import logfmt
from tests.web.conftest import WEB

CHILD = """
import logging, sys
from digest.pipeline import logfmt
logfmt.configure("text", "info")
log = logging.getLogger("digest.test")
log.error("the relay said no", extra=logfmt.fields(event="issue.paused"))
log.warning("a source failed")
log.info("sent")
log.debug("quiet")
"""


def test_each_line_carries_its_syslog_priority_when_stderr_is_the_journal(
    tmp_path: Path,
) -> None:
    errors = tmp_path / "stderr"
    with errors.open("wb") as stream:
        stat = os.fstat(stream.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
        subprocess.run([sys.executable, "-c", CHILD], stderr=stream, env=env, check=True)
    lines = errors.read_text("utf-8").splitlines()
    assert [line[:3] for line in lines] == ["<3>", "<4>", "<6>"], lines
    assert lines[0].startswith("<3>time=") and "event=issue.paused" in lines[0]


def test_no_priority_prefix_on_a_terminal_or_a_file(tmp_path: Path) -> None:
    errors = tmp_path / "stderr"
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    with errors.open("wb") as stream:
        subprocess.run([sys.executable, "-c", CHILD], stderr=stream, env=env, check=True)
    assert all(line.startswith("time=") for line in errors.read_text("utf-8").splitlines())


def test_priorities_follow_the_levels() -> None:
    assert [logfmt.priority(level) for level in (50, 40, 30, 20, 10, 25)] == [2, 3, 4, 6, 7, 6]
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, None)
    assert logfmt.KeyValueFormatter(syslog_prefix=True).format(record).startswith("<3>time=")
    assert logfmt.JsonFormatter(syslog_prefix=True).format(record).startswith('<3>{"time"')


def test_french_rendering_prints_nothing(tmp_path: Path) -> None:
    code = (
        "from digest.render.i18n import translations\n"
        "for language in ('fr', 'nl', 'en'): translations(language)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "" and done.stderr == ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_web_app_logs_in_the_same_format(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings(WEB)
    port = free_port()
    errors = tmp_path / "serve.log"
    command = [sys.executable, "-m", "digest", "--config", str(settings.path), "serve"]
    with errors.open("wb") as stream:
        process = subprocess.Popen(
            [*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=stream
        )
        try:
            deadline = time.monotonic() + 120  # generous: a busy machine starts slowly
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).is_success:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, errors.read_text("utf-8")
                assert process.poll() is None, errors.read_text("utf-8")
                time.sleep(0.1)
            httpx.get(f"http://127.0.0.1:{port}/en/no-such-page", timeout=5)
        finally:
            process.terminate()
            process.wait(timeout=60)
    lines = [line for line in errors.read_text("utf-8").splitlines() if line.strip()]
    assert lines, "it logs"
    assert all(line.startswith("time=") for line in lines), lines
    assert any("logger=uvicorn" in line for line in lines), lines
