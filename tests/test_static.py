"""The code stays typed and linted: `mypy --strict` and `ruff` clean on digest/ and subscribers/."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = BIN / name
    return str(found) if found.exists() else (shutil.which(name) or name)


def test_mypy_strict_is_clean() -> None:
    result = subprocess.run(
        [tool("mypy"), "--strict", "digest", "subscribers"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [tool("ruff"), "check", "digest", "subscribers", "examples", "tests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


IMPORTS_DIGEST = re.compile(r"^\s*(from|import)\s+digest\b", re.MULTILINE)
IMPORTS_TOP = re.compile(
    r"^\s*(from\s+digest\.(cli|web)\b|import\s+digest\.(cli|web)\b"
    r"|from\s+digest\s+import\s+[^\n]*\b(cli|web)\b)",
    re.MULTILINE,
)


def test_layers_respect_the_design() -> None:
    """subscribers/ imports nothing from digest/; nothing imports digest.web or digest.cli."""
    for path in (ROOT / "subscribers").rglob("*.py"):
        assert not IMPORTS_DIGEST.search(path.read_text(encoding="utf-8")), path
    for path in (ROOT / "digest").rglob("*.py"):
        if path.name == "__main__.py" or "cli" in path.parts or "web" in path.parts:
            continue
        assert not IMPORTS_TOP.search(path.read_text(encoding="utf-8")), path
