"""A teaser of plain paragraphs (or of bare text) skips trafilatura
(`extract._plain_paragraphs`): what it gives must be what trafilatura gives. Compared on
paragraphs of every seed page (the hub's real prose, menus and bylines included), in random
groups, and on paragraphs trafilatura treats apart (repeated, contained in another, share
buttons, invisible characters)."""

from __future__ import annotations

import random
from html import escape
from pathlib import Path

import pytest

from digest.collect import extract
from digest.collect.clean import sanitize_html
from digest.collect.extract import main_text

SEEDS = Path(__file__).parent / "golden" / "seeds"
TRICKY = [
    "Print",
    "Share on Facebook",
    "Facebook",
    "More on this topic",
    "Short news.",
    "Contact",
    "Read more",
    "13 June 2011 – On Tuesday the council met.",
    "Zero\u200bwidth space in a sentence that goes on for a while.",
    "A line\nPrint\nand more text after it.",
    "Non\u00a0breaking spaces &amp; ampersands < and > signs, 5 > 3.",
    "Submitted by admin on Tue, 12/05/2023 - 10:00",
    "x",
    "   ",
]


def _paragraphs() -> list[str]:
    found = [
        block
        for path in sorted(SEEDS.glob("*.txt"))
        for line in path.read_text(encoding="utf-8").split("\n\n")
        if (block := line.strip())
    ]
    return found + [line for p in found for line in p.splitlines() if line.strip()] + TRICKY


def _slow(html: str, title: str | None) -> str:
    saved = extract._plain_paragraphs
    extract._plain_paragraphs = lambda html: None
    try:
        return main_text(html, title=title)
    finally:
        extract._plain_paragraphs = saved


@pytest.mark.parametrize("seed", range(4))
def test_plain_teasers_give_what_trafilatura_gives(seed: int) -> None:
    paragraphs = _paragraphs()
    rnd = random.Random(seed)
    fast_taken = 0
    for _ in range(150):
        chosen = rnd.sample(paragraphs, rnd.randint(1, 5))
        if rnd.random() < 0.2:
            chosen.append(chosen[0])  # a paragraph repeated
        bare = rnd.random() < 0.2  # a teaser of text only, no tag
        html = sanitize_html(
            "\n".join(escape(p) for p in chosen)
            if bare
            else "".join(f"<p>{escape(p)}</p>" for p in chosen),
            None,
        )
        title = rnd.choice([None, chosen[0], "Another title"])
        fast_taken += extract._plain_paragraphs(html) is not None
        assert main_text(html, title=title) == _slow(html, title), chosen
    assert fast_taken > 50  # the comparison did exercise the shortcut


def test_anything_but_plain_paragraphs_goes_to_trafilatura() -> None:
    assert extract._plain_paragraphs("<p>Text with <a href='x'>a link</a>.</p>") is None
    assert extract._plain_paragraphs("<h2>Title</h2><p>Text.</p>") is None
    assert extract._plain_paragraphs("<p>One.</p><ul><li>a</li></ul>") is None
    assert extract._plain_paragraphs("Bare text") == []
    assert extract._plain_paragraphs("<p>Same.</p><p>Same.</p>") is None
    assert extract._plain_paragraphs("<p>Print</p><p>Some text.</p>") is None
    assert extract._plain_paragraphs("<p>A.</p><p>B.</p>") == [("p", "A."), ("p", "B.")]
