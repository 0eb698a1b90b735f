"""Rendering never stops an issue: an item that fails to render is left out of its variant
(and named with the error), the rest renders; a broken override template is named with its
file and line before anything is sent."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from digest.compose import IssuePlan
from digest.render.email import RenderError, check_items, render_for_inbox
from digest.render.environment import make_environment
from digest.render.overrides import TemplateProblem, check_overrides, problems
from tests.render.plans import example_plan, links

BROKEN_MJML = "<p>fine</p></mj-text></mj-column></mj-section><mj-oops>"
"""Summary HTML that closes the MJML around it: the MJML compiler refuses the document."""


def with_broken_items(plan: IssuePlan, language: str) -> tuple[IssuePlan, list[str]]:
    """The plan with its first news item's HTML breaking MJML and its first event's start
    of the wrong type (the template's time formatting raises)."""
    variant = plan.variant(language)
    news = variant.sections[0]
    events = next(s for s in variant.sections if s.name == "events")
    timed = next(i for i in events.items if not i.all_day)
    late = replace(timed, starts_at="tomorrow")  # type: ignore[arg-type]
    sections = tuple(
        replace(s, items=(replace(s.items[0], summary_html=BROKEN_MJML), *s.items[1:]))
        if s is news
        else replace(s, items=tuple(late if i is timed else i for i in s.items))
        if s is events
        else s
        for s in variant.sections
    )
    first, second = news.items[0], timed
    bad = replace(variant, sections=sections)
    plan = replace(plan, variants=tuple(bad if v is variant else v for v in plan.variants))
    return plan, [first.title, second.title]


def html_showing_override(directory: Path) -> Path:
    """An operator's templates folder whose item card also shows the item's HTML. The
    built-in cards show text excerpts, which cannot break MJML; such an override can:
    that is the MJML error an issue must survive."""
    builtin = Path(__file__).resolve().parents[2] / "templates" / "email" / "_entry.mjml.jinja"
    (directory / "email").mkdir(parents=True)
    (directory / "email" / "_entry.mjml.jinja").write_text(
        builtin.read_text(encoding="utf-8") + "{{ item.summary_html|safe }}\n", encoding="utf-8"
    )
    return directory


def test_an_item_that_fails_to_render_is_left_out_and_named(tmp_path: Path) -> None:
    env = make_environment(html_showing_override(tmp_path / "overrides"))
    plan, culprits = with_broken_items(example_plan(), "en")
    rendered = render_for_inbox(plan, "en", links("en"), env)
    assert sorted(o.title for o in rendered.omitted) == sorted(culprits)
    assert all(o.reason for o in rendered.omitted)
    assert any("ValueError" in o.reason for o in rendered.omitted), "the MJML error is said"
    for title in culprits:
        assert title not in rendered.text
    others = [
        i.title for s in plan.variant("en").sections for i in s.items if i.title not in culprits
    ]
    flat = " ".join(rendered.text.split())  # titles may be wrapped over lines
    assert others and all(" ".join(title.split()) in flat for title in others)
    assert "<html" in rendered.html
    # Other languages are untouched.
    assert render_for_inbox(plan, "nl", links("nl"), env).omitted == ()
    assert sorted(o.title for o in check_items(plan, "en", links("en"), env)) == sorted(culprits)
    assert check_items(plan, "nl", links("nl"), env) == []


def _override(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / "templates" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return tmp_path / "templates"


def test_a_broken_override_is_reported_with_file_and_line(tmp_path: Path) -> None:
    folder = _override(tmp_path, "email/issue.mjml.jinja", "<mjml>\n{% if x %}\n<mj-body>\n")
    found = problems(folder)
    assert len(found) == 1 and "issue.mjml.jinja:" in found[0] and "endif" in found[0]
    with pytest.raises(TemplateProblem, match=r"issue\.mjml\.jinja:\d+"):
        check_overrides(folder)
    check_overrides(None)
    check_overrides(_override(tmp_path / "good", "email/x.jinja", "{{ 1 }}"))


def test_a_template_that_fails_without_any_item_raises_naming_it(tmp_path: Path) -> None:
    folder = _override(tmp_path, "text/issue.txt.jinja", "{{ 1 // 0 }}\n")
    env = make_environment(folder)
    with pytest.raises(RenderError, match=r"does not render.*ZeroDivisionError"):
        render_for_inbox(example_plan(), "en", links("en"), env)
