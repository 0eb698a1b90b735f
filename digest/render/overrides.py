"""The operator's own templates ([render] templates_dir), checked before they are used.

A syntax error in an override would otherwise surface in the middle of a send (or as a
blank desk page). `check_overrides` parses every `*.jinja` file of the folder with the
same environment the renderers use and raises `TemplateProblem` naming the file and line.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from digest.errors import ConfigError
from digest.render.environment import make_environment


class TemplateProblem(ConfigError):
    """An override template does not parse; the message names its file and line."""


def problems(templates_dir: Path | None) -> list[str]:
    """Every override template that does not parse, as "file:line: message"."""
    if templates_dir is None or not templates_dir.is_dir():
        return []
    env = make_environment(templates_dir)
    found = []
    for path in sorted(templates_dir.rglob("*.jinja")):
        name = path.relative_to(templates_dir).as_posix()
        try:
            env.parse(path.read_text(encoding="utf-8"), name=name, filename=str(path))
        except jinja2.TemplateSyntaxError as exc:
            found.append(f"{path}:{exc.lineno}: {exc.message}")
        except (OSError, UnicodeDecodeError) as exc:
            found.append(f"{path}: cannot be read ({exc})")
    return found


def check_overrides(templates_dir: Path | None) -> None:
    """Raise `TemplateProblem` when an override template does not parse."""
    found = problems(templates_dir)
    if found:
        raise TemplateProblem(
            "[render] templates_dir has a template that does not parse: "
            + "; ".join(found)
            + "; fix it (or move it out of the folder) before sending"
        )
