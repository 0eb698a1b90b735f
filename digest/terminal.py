"""Text from outside, made safe for a terminal or a log line.

A feed title, an error a server sent, or a source's URL may hold ANSI escape sequences
(CSI `ESC [ … m` colours and cursor moves, OSC `ESC ] … BEL` titles and hyperlinks, the
8-bit CSI U+009B), other control characters, or bidi overrides that turn the rest of a
line around. `printable` removes them all; `echo` and `secho` are `click`'s with
`printable` applied first (our own colours are added after it, so they survive).
"""

from __future__ import annotations

import re
from typing import Any

import click

_ESCAPES = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC … BEL / ST (titles, hyperlinks)
    r"|\x1b[P^_X][^\x1b]*(?:\x1b\\)?"  # DCS, PM, APC, SOS … ST
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"  # CSI (7- and 8-bit)
    r"|\x1b[ -/]*[0-~]?"  # any other escape
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""C0 (but tab and newline), DEL, C1 and bidi overrides/isolates."""


def printable(text: str, *, newlines: bool = True) -> str:
    """Return `text` without escape sequences, control characters or bidi overrides;
    newlines stay unless `newlines` is false (then they become spaces: one log line)."""
    text = _CONTROLS.sub("", _ESCAPES.sub("", text))
    return text if newlines else text.replace("\n", " ")


def echo(message: Any = "", **options: Any) -> None:
    """`click.echo` of `printable(message)`."""
    click.echo(printable(str(message)), **options)


def secho(message: Any = "", **styles: Any) -> None:
    """`click.secho` of `printable(message)`: the style is ours, the text is cleaned."""
    click.secho(printable(str(message)), **styles)
