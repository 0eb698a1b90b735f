"""A publish renders only what changed: issue pages whose inputs (the issue, its neighbours,
the site, the templates, the settings) are unchanged are neither parsed nor rendered, and
the result is byte for byte what a publish from scratch makes."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from lxml import html as lxml_html
from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from digest.pipeline import archive_files
from digest.publish import paging
from digest.publish.manifest import MANIFEST, SUMMARIES
from digest.store.models import Issue
from tests.test_draft import MONDAY, example_settings


def _add_issue(factory: sessionmaker[Session], template: Issue, number: int) -> None:
    """Publish a copy of `template` as issue `number`, a week after the one before."""
    raw = json.loads(template.plan)
    raw["number"] = number
    published_at = MONDAY + timedelta(days=7 * number)
    with factory.begin() as session:
        session.add(
            Issue(
                number=number,
                cadence=template.cadence,
                slot=published_at,
                status=template.status,
                plan=json.dumps(raw, sort_keys=True),
                curation=template.curation,
                composed_at=template.composed_at,
                created_at=template.created_at,
                updated_at=published_at,
                published_at=published_at,
            )
        )


@pytest.fixture
def archive(make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]) -> Any:
    """The example publication with issues 1–3 published."""
    settings = example_settings(make_settings, tmp_path)
    pipeline.collect_sources(settings, factory, now=MONDAY - timedelta(days=1))
    drafted = pipeline.draft(settings, factory, now=MONDAY)
    with factory() as session:
        template = session.scalars(sa.select(Issue).where(Issue.number == drafted.number)).one()
        session.delete(template)
        session.commit()
    for number in (1, 2, 3):
        _add_issue(factory, template, number)
    return settings, template


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """Every archive page rendered, as (issue number, language)."""
    done: list[tuple[int, str]] = []
    real = archive_files.render_page

    def counted(plan: Any, **kwargs: Any) -> str:
        done.append((plan.number, kwargs["language"]))
        return real(plan, **kwargs)

    monkeypatch.setattr(archive_files, "render_page", counted)
    return done


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST and SUMMARIES not in path.parts
    }


def _same_as_from_scratch(settings: Any, factory: sessionmaker[Session], tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    scratch = replace(settings, publish=replace(settings.publish, output_dir=fresh))
    pipeline.publish(scratch, factory, now=MONDAY + timedelta(days=60))
    assert _files(settings.publish.output_dir) == _files(fresh)


def test_one_new_issue_renders_its_page_and_its_neighbours_only(
    archive: Any, factory: sessionmaker[Session], renders: list[tuple[int, str]], tmp_path: Path
) -> None:
    settings, template = archive
    languages = settings.publication.languages
    now = MONDAY + timedelta(days=60)
    first = pipeline.publish(settings, factory, now=now)
    assert sorted(renders) == sorted((n, lang) for n in (1, 2, 3) for lang in languages)
    assert (settings.publish.output_dir / MANIFEST).is_file()
    assert "archive/en/1.html" in first.written

    renders.clear()
    again = pipeline.publish(settings, factory, now=now)
    assert renders == []  # nothing new: no page rendered
    assert again.written == [MANIFEST] or again.written == []
    assert "archive/en/1.html" in again.unchanged

    renders.clear()
    _add_issue(factory, template, 4)
    report = pipeline.publish(settings, factory, now=now)
    # Issue 4 is new, and issue 3 gains its "next" link; 1 and 2 are left alone.
    assert sorted(renders) == sorted((n, lang) for n in (3, 4) for lang in languages)
    assert "archive/en/4.html" in report.written and "archive/en/1.html" in report.unchanged
    index = (settings.publish.output_dir / "archive/en/index.html").read_text("utf-8")
    assert "4.html" in index
    _same_as_from_scratch(settings, factory, tmp_path)


def test_a_changed_issue_is_rendered_again(
    archive: Any, factory: sessionmaker[Session], renders: list[tuple[int, str]], tmp_path: Path
) -> None:
    settings, _ = archive
    now = MONDAY + timedelta(days=60)
    pipeline.publish(settings, factory, now=now)
    renders.clear()
    with factory.begin() as session:
        issue = session.scalars(sa.select(Issue).where(Issue.number == 2)).one()
        raw = json.loads(issue.plan)
        for variant in raw["variants"]:
            variant["intro"] = "A corrected intro"
        issue.plan = json.dumps(raw, sort_keys=True)
    pipeline.publish(settings, factory, now=now)
    # Issue 2 changed; its neighbours show its subject, so they are rendered too.
    assert {number for number, _ in renders} == {1, 2, 3}
    page = (settings.publish.output_dir / "archive/en/2.html").read_text("utf-8")
    assert "A corrected intro" in page
    _same_as_from_scratch(settings, factory, tmp_path)


def test_changed_templates_render_every_page(
    archive: Any, factory: sessionmaker[Session], renders: list[tuple[int, str]], tmp_path: Path
) -> None:
    settings, _ = archive
    templates = tmp_path / "templates"
    templates.mkdir()
    settings = replace(settings, render=replace(settings.render, templates_dir=templates))
    now = MONDAY + timedelta(days=60)
    pipeline.publish(settings, factory, now=now)
    renders.clear()
    (templates / "web").mkdir()
    (templates / "web" / "notes.txt").write_text("an operator's change\n", encoding="utf-8")
    pipeline.publish(settings, factory, now=now)
    assert len(renders) == 3 * len(settings.publication.languages)


def test_a_page_changed_on_disk_is_written_again(
    archive: Any, factory: sessionmaker[Session], renders: list[tuple[int, str]]
) -> None:
    settings, _ = archive
    now = MONDAY + timedelta(days=60)
    pipeline.publish(settings, factory, now=now)
    page = settings.publish.output_dir / "archive/en/1.html"
    good = page.read_bytes()
    page.write_bytes(b"defaced")
    (settings.publish.output_dir / "archive/en/2.html").unlink()
    renders.clear()
    report = pipeline.publish(settings, factory, now=now)
    assert sorted(renders) == [(1, "en"), (2, "en")]
    assert page.read_bytes() == good
    assert {"archive/en/1.html", "archive/en/2.html"} <= set(report.written)


def test_a_damaged_manifest_means_a_full_publish(
    archive: Any, factory: sessionmaker[Session], renders: list[tuple[int, str]], tmp_path: Path
) -> None:
    settings, _ = archive
    now = MONDAY + timedelta(days=60)
    pipeline.publish(settings, factory, now=now)
    (settings.publish.output_dir / MANIFEST).write_text("{not json", encoding="utf-8")
    renders.clear()
    report = pipeline.publish(settings, factory, now=now)
    assert len(renders) == 3 * len(settings.publication.languages)
    assert "archive/en/1.html" in report.unchanged  # same bytes: not written again
    _same_as_from_scratch(settings, factory, tmp_path)


@pytest.fixture
def index_renders(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """Every archive index page rendered, as (older page number, or 0: the index; language)."""
    done: list[tuple[int, str]] = []
    real = archive_files.render_index

    def counted(entries: Any, **kwargs: Any) -> str:
        done.append((kwargs.get("page") or 0, kwargs["language"]))
        return real(entries, **kwargs)

    monkeypatch.setattr(archive_files, "render_index", counted)
    return done


@pytest.fixture
def entry_renders(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """Every entry of the feed of issues rendered, as (issue number, language)."""
    done: list[tuple[int, str]] = []
    real = archive_files.render_issue_entry

    def counted(plan: Any, language: str, *args: Any) -> str:
        done.append((plan.number, language))
        return real(plan, language, *args)

    monkeypatch.setattr(archive_files, "render_issue_entry", counted)
    return done


def test_one_new_issue_in_a_long_archive_renders_the_same_few_files(
    archive: Any,
    factory: sessionmaker[Session],
    renders: list[tuple[int, str]],
    index_renders: list[tuple[int, str]],
    entry_renders: list[tuple[int, str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Pages of 2 issues stand in for pages of 50: with 7 issues, page 1 holds 1–2, page 2
    holds 3–4 and the index 5–7; whatever the archive's size, one new issue renders its
    page, its neighbour's, the index (and, when the index rolls over, the newest older
    page and the one before it) and writes no older page or part of the search index."""
    monkeypatch.setattr(paging, "PAGE_SIZE", 2)
    settings, template = archive
    languages = settings.publication.languages
    now = MONDAY + timedelta(days=60)
    for number in range(4, 8):
        _add_issue(factory, template, number)
    pipeline.publish(settings, factory, now=now)
    assert sorted(index_renders) == sorted((p, lang) for p in (1, 2, 0) for lang in languages)

    assert len(entry_renders) == 7 * len(languages)

    renders.clear()
    index_renders.clear()
    entry_renders.clear()
    _add_issue(factory, template, 8)
    report = pipeline.publish(settings, factory, now=now)
    assert sorted(renders) == sorted((n, lang) for n in (7, 8) for lang in languages)
    assert sorted(index_renders) == sorted((0, lang) for lang in languages)
    # The feed's other entries are taken from the feed as written.
    assert sorted(entry_renders) == sorted((8, lang) for lang in languages)
    assert {f"feeds/{lang}.atom" for lang in languages} <= set(report.written)
    untouched = {f"archive/{lang}/{name}" for lang in languages for name in _older(1, 2)}
    assert untouched <= set(report.unchanged) and not untouched & set(report.written)
    assert {f"archive/{lang}/search.json" for lang in languages} <= set(report.written)

    renders.clear()
    index_renders.clear()
    _add_issue(factory, template, 9)  # 5 pages of 2: 5–6 move from the index to page 3
    report = pipeline.publish(settings, factory, now=now)
    assert sorted(renders) == sorted((n, lang) for n in (8, 9) for lang in languages)
    assert sorted(index_renders) == sorted((p, lang) for p in (2, 3, 0) for lang in languages)
    untouched = {f"archive/{lang}/{name}" for lang in languages for name in _older(1)}
    assert untouched <= set(report.unchanged) and not untouched & set(report.written)
    assert "archive/en/page-3.html" in report.written
    assert "archive/en/search-3.json" in report.written
    _same_as_from_scratch(settings, factory, tmp_path)

    entry_renders.clear()
    report = pipeline.publish(settings, factory, now=now)
    assert entry_renders == [] and report.written in ([], [MANIFEST])  # nothing new
    assert {f"feeds/{lang}.atom" for lang in languages} <= set(report.unchanged)

    index_renders.clear()
    entry_renders.clear()
    templates = tmp_path / "templates"
    (templates / "web").mkdir(parents=True)
    (templates / "web" / "notes.txt").write_text("an operator's change\n", encoding="utf-8")
    changed = replace(settings, render=replace(settings.render, templates_dir=templates))
    renders.clear()
    pipeline.publish(changed, factory, now=now)
    assert len(renders) == 9 * len(languages)  # a template change renders everything
    assert len(entry_renders) == 9 * len(languages)
    assert sorted(index_renders) == sorted((p, lang) for p in (1, 2, 3, 0) for lang in languages)


def _older(*pages: int) -> list[str]:
    return [name for page in pages for name in (f"page-{page}.html", f"search-{page}.json")]


def test_the_archive_pages_link_every_issue_once(
    archive: Any, factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paging, "PAGE_SIZE", 2)
    settings, template = archive
    for number in range(4, 10):
        _add_issue(factory, template, number)
    pipeline.publish(settings, factory, now=MONDAY + timedelta(days=60))
    out = settings.publish.output_dir
    base = settings.publication.base_url.rstrip("/")
    listed: list[int] = []
    url: str | None = f"{base}/archive/fr/index.html"
    newer: str | None = None
    while url is not None:
        page = lxml_html.fromstring((out / url.removeprefix(base + "/")).read_bytes())
        assert page.xpath("//link[@rel='canonical']/@href") == [url]
        assert page.xpath("//nav[@class='pager']//a[@rel='prev']/@href") == (
            [newer] if newer else []
        )
        listed += [
            int(href.rsplit("/", 1)[1].split(".")[0])
            for href in page.xpath("//ol[@class='issues']/li/a/@href")
        ]
        older = page.xpath("//nav[@class='pager']//a[@rel='next']/@href")
        newer, url = url, (older[0] if older else None)
    assert listed == list(range(9, 0, -1))  # newest first, each once, over 4 pages
    parts = json.loads((out / "archive/fr/search.json").read_bytes())["parts"]
    assert parts == ["search-3.json", "search-2.json", "search-1.json"]
    numbers = {
        record["number"]
        for name in parts
        for record in json.loads((out / "archive/fr" / name).read_bytes())
    }
    # These issues carry the same stories: a part keeps its newest issue's, and the
    # search keeps the newest of the parts' (`search.search`).
    assert numbers == {2, 4, 6}


def test_an_issue_without_a_stored_plan_hash_is_hashed_from_its_plan(
    archive: Any, factory: sessionmaker[Session], renders: list[tuple[int, str]]
) -> None:
    """Rows written before `plan_sha256` existed (or by raw SQL) have none: their plan is
    read and hashed, to the same key, so nothing is rendered again."""
    settings, _ = archive
    now = MONDAY + timedelta(days=60)
    with factory() as session:
        hashes = session.scalars(sa.select(Issue.plan_sha256).order_by(Issue.number)).all()
    assert len(hashes) == 3 and all(hashes)  # kept by the ORM whenever the plan is set
    pipeline.publish(settings, factory, now=now)
    with factory.begin() as session:
        session.execute(sa.update(Issue).values(plan_sha256=None))
    renders.clear()
    pipeline.publish(settings, factory, now=now)
    assert renders == []
