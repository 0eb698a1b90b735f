"""`digest serve` is a command of the CLI, and the app factory uvicorn can load."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.web import app_from_env
from tests.web.conftest import WEB, TestClient


def test_serve_is_a_command_with_help() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--host" in result.output and "--port" in result.output
    assert "editor's desk" in result.output


def test_serve_refuses_to_start_without_secrets(make_settings: Any) -> None:
    settings = make_settings("")
    result = CliRunner().invoke(cli, ["--config", str(settings.path), "serve"])
    assert result.exit_code == 1
    assert "[web] secret_key is not set" in result.output


def test_app_from_env_reads_digest_config(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(WEB)
    monkeypatch.setenv("DIGEST_CONFIG", str(settings.path))
    with TestClient(app_from_env(), base_url="https://testserver") as client:
        assert client.get("/healthz").text == "ok\n"
        assert client.get("/fr/").status_code == 200
