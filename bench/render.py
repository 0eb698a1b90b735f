"""Time the render stage per language variant: Jinja, MJML, inlining and the text part,
each against a ceiling measured in the same run; and what fitting, main-content extraction
and story grouping cost.

For the example issue (12 items) each variant's steps are timed interleaved (the best of R
rounds: on a shared machine the median measures the neighbours, and interleaving makes
load hit every step alike), beside two references on the same compiled HTML:
premailer itself (what we inlined with before) and css_inline (a Rust inliner, the
ceiling: inlining can hardly cost less). Printed: each step, the variant's total, inlining
as a multiple of the ceiling, the variant as a multiple of its ceiling (the same steps with
css_inline's inlining), and the text part as a share of the HTML. Target: ≤ 10 ms a
variant on a quiet machine, the text part below the HTML. Then N and 2N items
(`--items`): how the total grows (2.0 is linear). No database, no network.

    .venv/bin/python bench/render.py [--runs 30] [--items 30] [--candidates 1000]
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


def timed(runs: int, step: Callable[[], T]) -> tuple[float, T]:
    """Run `step` `runs` times; return the median in milliseconds and the last result."""
    durations = []
    result = step()  # warm-up: template compilation and CSS parse caches
    for _ in range(runs):
        start = time.perf_counter()
        result = step()
        durations.append((time.perf_counter() - start) * 1000)
    return statistics.median(durations), result


def interleaved(runs: int, steps: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Best milliseconds of each step, the steps run in turn in every round."""
    durations: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():
        step()  # warm-up
    for _ in range(runs):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            durations[name].append((time.perf_counter() - start) * 1000)
    return {name: min(values) for name, values in durations.items()}


def premailer_itself(html: str) -> str:
    """premailer with our options and nothing of ours cached: the reference."""
    import logging

    import premailer

    if html[:15].lower() == "<!doctype html>":
        html = "<!DOCTYPE html>" + html[15:]
    result: str = premailer.Premailer(
        html,
        allow_network=False,
        disable_validation=True,
        strip_important=False,
        cssutils_logging_level=logging.CRITICAL,
    ).transform(pretty_print=False)
    return result


def variant_times(
    plan: IssuePlan, language: str, runs: int, *, premailer: bool = True
) -> dict[str, float]:
    """Each step of rendering the variant in `language`, with css_inline (the ceiling) and,
    unless told not to, premailer itself."""
    import css_inline

    env = make_environment(None)
    link = links(language)
    source = render_mjml(plan, language, link, env)
    compiled = mjml_to_html(source)
    steps: dict[str, Callable[[], object]] = {
        "jinja": partial(render_mjml, plan, language, link, env),
        "mjml": partial(mjml_to_html, source),
        "inline": partial(inline_styles, compiled),
        "text": partial(render_text, plan, language, link, env),
        "css_inline": partial(css_inline.inline, compiled),
    }
    if premailer:
        steps["premailer"] = partial(premailer_itself, compiled)
    times = interleaved(runs, steps)
    times["html"] = times["jinja"] + times["mjml"] + times["inline"]
    times["total"] = times["html"] + times["text"]
    times["ceiling"] = times["total"] - times["inline"] + times["css_inline"]
    times["size"] = html_size(inline_styles(compiled))
    return times


def bench(name: str, plan: IssuePlan, runs: int) -> None:
    """Print one line per language variant of `plan`."""
    print(f"\n{name}: issue {plan.number}, best of {runs} interleaved rounds (ms)")
    print(
        f"{'lang':<5}{'items':>6}{'jinja':>7}{'mjml':>6}{'inline':>8}{'text':>6}{'total':>7}"
        f"{'│ premailer':>12}{'css_inline':>11}{'│ inline×':>10}{'premailer×':>11}"
        f"{'total×':>8}{'text/HTML':>10}{'HTML KB':>9}"
    )
    for variant in plan.variants:
        t = variant_times(plan, variant.language, runs)
        print(
            f"{variant.language:<5}{variant.item_count:>6}{t['jinja']:>7.2f}{t['mjml']:>6.2f}"
            f"{t['inline']:>8.2f}{t['text']:>6.2f}{t['total']:>7.2f}"
            f"{t['premailer']:>12.2f}{t['css_inline']:>11.2f}"
            f"{t['inline'] / t['css_inline']:>10.1f}{t['premailer'] / t['css_inline']:>11.1f}"
            f"{t['total'] / t['ceiling']:>8.2f}{t['text'] / t['html']:>10.0%}"
            f"{t['size'] / 1024:>9.1f}"
        )
    print(
        "  inline× and premailer×: times css_inline on the same HTML (the ceiling); total×:"
        " the variant against the same steps with css_inline's inlining"
    )


def growth(items: int, runs: int) -> None:
    """Print how a variant's render grows from `items` to twice as many."""
    print(f"\ngrowth, {items} → {2 * items} items, best of {runs} interleaved rounds (ms)")
    print(f"{'lang':<5}{'total N':>9}{'total 2N':>10}{'2N/N':>7}{'inline×':>9}{'total×':>8}")
    small, large = large_plan(items), large_plan(2 * items)
    for variant in small.variants:
        first = variant_times(small, variant.language, runs, premailer=False)
        second = variant_times(large, variant.language, runs, premailer=False)
        print(
            f"{variant.language:<5}{first['total']:>9.2f}{second['total']:>10.2f}"
            f"{second['total'] / first['total']:>7.2f}"
            f"{second['inline'] / second['css_inline']:>9.1f}"
            f"{second['total'] / second['ceiling']:>8.2f}"
        )
    print("  2N/N: 2.0 is linear; inline× and total× at 2N")


def main() -> None:
    """Parse the options and print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="rounds per step")
    parser.add_argument("--items", type=int, default=30, help="N, items of the growth bench")
    parser.add_argument(
        "--candidates", type=int, default=1000, help="news candidates for the grouping bench"
    )
    options = parser.parse_args()
    bench("example issue", example_plan(), options.runs)
    growth(options.items, max(5, options.runs // 2))
    fit(large_plan(2 * options.items), max(3, options.runs // 5))
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
