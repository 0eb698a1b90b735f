"""`digest preview --channel`: each channel as its readers get it, on a clean stdout."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from examples.run import materialize

TODAY = date(2026, 11, 23)


def digest(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    return subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("example")
    materialize(folder, TODAY)
    path = folder / "digest.toml"
    steps = (("init", str(folder)), ("collect", "--all"), ("draft", "--as-of", "2026-11-23T07:00"))
    for args in steps:
        done = digest(path, *args)
        assert done.returncode == 0, done.stderr
    return path


@pytest.mark.parametrize("channel", ["email", "archive", "feed"])
def test_html_channels_are_standards_mode_documents_alone_on_stdout(
    config: Path, channel: str
) -> None:
    done = digest(config, "preview", "--language", "fr", "--channel", channel)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("<!DOCTYPE html>"), done.stdout[:200]
    assert "WARNING" not in done.stdout
    assert done.stdout.rstrip().endswith("</html>")
    assert 'lang="fr"' in done.stdout[:400]


def test_each_channel_shows_what_its_readers_get(config: Path) -> None:
    email = digest(config, "preview", "-l", "fr", "--channel", "email").stdout
    archive = digest(config, "preview", "-l", "fr", "--channel", "archive").stdout
    feed = digest(config, "preview", "-l", "fr", "--channel", "feed").stdout
    text = digest(config, "preview", "-l", "fr", "--channel", "text").stdout
    assert "Se désabonner" in email and "Se désabonner" in text  # the subscriber footer
    for page in (archive, feed):
        assert "Se désabonner" not in page and "Voir dans le navigateur" not in page
        assert "Lire ce numéro sur le web" in page or 'class="site-nav"' in page
    assert 'class="site-nav"' in archive and 'type="application/atom+xml"' in archive
    assert "Recevoir par e-mail" in feed
    assert not text.lstrip().startswith("<")


def test_format_text_still_means_the_text_part(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "issue.txt"
    done = digest(config, "preview", "--format", "text", "--output", str(out))
    assert done.returncode == 0 and done.stdout == ""
    assert "wrote" in done.stderr and out.read_text(encoding="utf-8").strip()
    clash = digest(config, "preview", "--format", "text", "--channel", "archive")
    assert clash.returncode != 0 and "contradicts" in clash.stderr
