"""The Jinja environment: escaping by template kind, strict variables, translations, wrap."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import jinja2
import pytest

from digest.render.environment import (
    BUILTIN_TEMPLATES,
    make_environment,
    paragraphs,
    translation_context,
    wrap,
)

SOURCE = '{{ value }}|{{ _("In %(language)s", language=value) }}|{{ _("News") }}'


@pytest.fixture
def env(tmp_path: Path) -> jinja2.Environment:
    for name in ("page.html.jinja", "mail.mjml.jinja", "part.txt.jinja"):
        (tmp_path / name).write_text(SOURCE, encoding="utf-8")
    return make_environment(tmp_path)


def test_builtin_templates_are_the_repository_folder() -> None:
    assert (BUILTIN_TEMPLATES / "email" / "issue.mjml.jinja").is_file()
    assert make_environment(None) is make_environment(None)


@pytest.mark.parametrize("name", ["page.html.jinja", "mail.mjml.jinja"])
def test_markup_templates_escape_values_but_not_translations(
    env: jinja2.Environment, name: str
) -> None:
    out = env.get_template(name).render(value="<b>&", **translation_context("nl"))
    assert out == "&lt;b&gt;&amp;|In het &lt;b&gt;&amp;|Nieuws"


def test_text_templates_are_not_escaped(env: jinja2.Environment) -> None:
    out = env.get_template("part.txt.jinja").render(value="<b>&", **translation_context("fr"))
    assert out == "<b>&|En <b>&|Actualités"


def test_without_a_language_strings_stay_english(env: jinja2.Environment) -> None:
    assert env.get_template("part.txt.jinja").render(value="x") == "x|In x|News"


def test_a_missing_variable_is_an_error(env: jinja2.Environment) -> None:
    with pytest.raises(jinja2.UndefinedError, match="value"):
        env.get_template("page.html.jinja").render(**translation_context("en"))


def test_plural_messages_count(tmp_path: Path) -> None:
    (tmp_path / "more.txt.jinja").write_text(
        '{{ ngettext("%(num)d more in the archive", "%(num)d more in the archive", n) }}',
        encoding="utf-8",
    )
    template = make_environment(tmp_path).get_template("more.txt.jinja")
    assert template.render(n=1, **translation_context("fr")) == "1 autre dans les archives"
    assert template.render(n=4, **translation_context("fr")) == "4 autres dans les archives"
    assert template.render(n=4, **translation_context("nl")) == "Nog 4 in het archief"


def test_wrap_keeps_paragraphs_bullets_and_whole_urls() -> None:
    url = "https://brussels-migration.example.org/nl/agenda/" + "x" * 60
    text = f"One two three four five six seven eight nine ten.\n\nSee {url} now."
    assert wrap(text, width=20, indent="  ", first="* ").splitlines() == [
        "* One two three four",
        "  five six seven",
        "  eight nine ten.",
        "",
        "  See",
        f"  {url}",
        "  now.",
    ]
    assert wrap("  a \n b  ") == "a b"
    assert wrap("") == ""


def _textwrap_reference(text: str, width: int, indent: str, first: str | None) -> str:
    """What `wrap` did with `textwrap.fill`, before its own greedy fill."""
    filled = []
    for number, paragraph in enumerate(paragraphs(text)):
        lead = first if number == 0 and first is not None else indent
        filled.append(
            textwrap.fill(
                paragraph,
                width=width,
                initial_indent=lead,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n\n".join(filled)


def test_wrap_fills_exactly_as_textwrap_does() -> None:
    pieces = ["a", "bb", "word", "x" * 80, "\u00a0", "Quand\u00a0:", "14:00\u202f–", "é"]
    pieces += ["well-known", " ", "  ", "\n", "\n\n", "\t"]
    chooser = random.Random(16)
    for _ in range(2000):
        words = chooser.choices(pieces, k=chooser.randint(0, 30))
        text = "".join(w + (" " if chooser.random() < 0.6 else "") for w in words)
        width = chooser.choice([1, 3, 8, 20, 40, 72])
        indent = chooser.choice(["", "  ", "     "])
        first = chooser.choice([None, "* ", "!! "])
        expected = _textwrap_reference(text, width, indent, first)
        assert wrap(text, width, indent, first) == expected, (text, width, indent, first)
