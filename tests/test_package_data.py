"""Every file the package reads at run time ships in the wheel: a data file under digest/
that no `[tool.setuptools.package-data]` pattern names would be missing from an install
(as publish/search.js once was; `.ci/wheel-smoke` proves the installed wheel runs)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "digest"
BUILT = {".py", ".pyc", ".mo", ".orig", ".rej"}
"""Python sources ship anyway; .mo files are compiled at build time (setup.py)."""


def matches(path: str, pattern: str) -> bool:
    """setuptools' glob: `**` any folders, `*` within one name."""
    parts = re.split(r"(\*\*/?|\*)", pattern)
    regex = "".join(
        "(?:.*/)?"
        if part in ("**/",)
        else ".*"
        if part == "**"
        else "[^/]*"
        if part == "*"
        else re.escape(part)
        for part in parts
    )
    return re.fullmatch(regex, path) is not None


def test_every_data_file_is_named_in_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["digest"]
    data = [
        path.relative_to(PACKAGE)
        for path in PACKAGE.rglob("*")
        if path.is_file()
        and path.suffix not in BUILT
        and "__pycache__" not in path.parts
        and not path.name.startswith(".")
    ]
    assert data, "the package has data files (templates, catalogues, migrations)"
    missing = [str(p) for p in data if not any(matches(p.as_posix(), x) for x in patterns)]
    assert not missing, f"add these to [tool.setuptools.package-data] digest: {missing}"
