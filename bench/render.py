"""Time the render stage per language variant: Jinja, MJML, premailer, and the text part;
and what main-content extraction and story grouping cost.

Prints the median of N runs for the example issue (12 items) and for a 60-item issue made
from the same material, with the HTML size (and the size as sent, quoted-printable)
against Gmail's 102 KB clip and premailer's share of the time; then extraction per item
(trafilatura + our rules, on the example's feed bodies and the seed pages) and grouping
per issue (1,000 and 10,000 candidates; target < 1 s for 1,000). No database, no network.

    .venv/bin/python bench/render.py [--runs 30] [--items 60] [--candidates 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

from digest.compose import IssuePlan
from digest.render.email import (
    INBOX_HTML_LIMIT,
    html_size,
    inline_styles,
    mjml_to_html,
    render_for_inbox,
    render_mjml,
    render_text,
    sent_size,
)
from digest.render.environment import make_environment
from tests.render.plans import example_plan, large_plan, links

T = TypeVar("T")
GMAIL_CLIP = 102 * 1024


def timed(runs: int, step: Callable[[], T]) -> tuple[float, T]:
    """Run `step` `runs` times; return the median in milliseconds and the last result."""
    durations = []
    result = step()  # warm-up: template compilation and CSS parse caches
    for _ in range(runs):
        start = time.perf_counter()
        result = step()
        durations.append((time.perf_counter() - start) * 1000)
    return statistics.median(durations), result


def bench(name: str, plan: IssuePlan, runs: int) -> None:
    """Print one line per language variant of `plan`."""
    env = make_environment(None)
    print(f"\n{name}: issue {plan.number}, median of {runs} runs (ms)")
    print(
        f"{'lang':<5}{'items':>6}{'jinja':>8}{'mjml':>8}{'premailer':>11}{'text':>7}"
        f"{'total':>8}{'premailer%':>12}{'HTML KB':>9}{'of clip':>9}"
    )
    for variant in plan.variants:
        language = variant.language
        link = links(language)
        jinja_ms, source = timed(runs, partial(render_mjml, plan, language, link, env))
        mjml_ms, compiled = timed(runs, partial(mjml_to_html, source))
        premailer_ms, html = timed(runs, partial(inline_styles, compiled))
        text_ms, _ = timed(runs, partial(render_text, plan, language, link, env))
        total = jinja_ms + mjml_ms + premailer_ms + text_ms
        size = html_size(html)
        print(
            f"{language:<5}{variant.item_count:>6}{jinja_ms:>8.2f}{mjml_ms:>8.2f}"
            f"{premailer_ms:>11.2f}{text_ms:>7.2f}{total:>8.2f}"
            f"{premailer_ms / total:>12.0%}{size / 1024:>9.1f}{size / GMAIL_CLIP:>9.0%}"
        )


def main() -> None:
    """Parse the options and print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per step (median)")
    parser.add_argument("--items", type=int, default=60, help="items in the large issue")
    parser.add_argument(
        "--candidates", type=int, default=1000, help="news candidates for the grouping bench"
    )
    options = parser.parse_args()
    bench("example issue", example_plan(), options.runs)
    large = large_plan(options.items)
    bench(f"{options.items}-item issue", large, options.runs)
    fit(large, max(3, options.runs // 5))
    extraction(max(3, options.runs // 3))
    grouping(options.candidates, max(3, options.runs // 10))


def extraction(runs: int) -> None:
    """Print what main-content extraction costs per item: the example's feed bodies and
    page, and the seed pages (as text and as HTML)."""
    from html import escape

    import feedparser

    from digest.collect.extract import extract_html, extract_text

    root = Path(__file__).resolve().parent.parent
    bodies = []
    for name in ("iom-belgium.atom", "migration-governance.rss", "stad-en-migratie.rss"):
        for entry in feedparser.parse(root / "examples/publication/feeds" / name).entries:
            bodies.append(entry.content[0].value if "content" in entry else entry.summary)
    bodies.append((root / "examples/publication/pages/iom-belgium-projects.html").read_text())
    seeds = [p.read_text() for p in sorted((root / "tests/collect/golden/seeds").glob("*.txt"))]
    pages = [
        "<html><body>"
        + "".join(f"<p>{escape(line)}</p>" for line in seed.splitlines())
        + "</body></html>"
        for seed in seeds
    ]
    print(f"\nmain-content extraction, median of {runs} runs, per item (ms)")
    for label, step, inputs in (
        ("feed bodies + page (HTML)", extract_html, bodies),
        ("seed pages as HTML", extract_html, pages),
        ("seed pages as text", extract_text, seeds),
    ):
        ms, _ = timed(runs, lambda step=step, inputs=inputs: [step(i) for i in inputs])
        print(f"  {label:<28}{len(inputs):>4} items {ms / len(inputs):>8.2f} ms/item")


def grouping(count: int, runs: int) -> None:
    """Print what grouping `count` candidates into stories costs (and 10× as many)."""
    from digest.compose.stories import group
    from tests.compose.test_stories import synthetic

    print(f"\nstory grouping, median of {runs} runs")
    for size in (count, count * 10):
        items = synthetic(size)
        ms, stories = timed(runs, partial(group, items))
        print(
            f"  {size:>6} candidates → {len(stories):>6} stories: {ms:>8.1f} ms"
            f" ({ms / size * 1000:.0f} µs/item){'  (target < 1 s)' if size == count else ''}"
        )


def fit(plan: IssuePlan, runs: int) -> None:
    """Print what fitting a too-large issue under the clip costs (`render_for_inbox`)."""
    env = make_environment(None)
    print(f"\nfitted under {INBOX_HTML_LIMIT // 1024} KB for the inbox, median of {runs} runs")
    print(f"{'lang':<5}{'items':>6}{'shown':>7}{'HTML KB':>9}{'sent KB':>9}{'ms':>9}")
    for variant in plan.variants:
        language = variant.language
        ms, rendered = timed(runs, partial(render_for_inbox, plan, language, links(language), env))
        shown = rendered.html.count("<h3")
        size = html_size(rendered.html) / 1024
        sent = sent_size(rendered.html) / 1024
        print(f"{language:<5}{variant.item_count:>6}{shown:>7}{size:>9.1f}{sent:>9.1f}{ms:>9.1f}")


if __name__ == "__main__":
    main()
