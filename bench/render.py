"""Time the render stage per language variant: Jinja, MJML, premailer, and the text part.

Prints the median of N runs for the example issue (12 items) and for a 60-item issue made
from the same material, with the HTML size against Gmail's 102 KB clip and premailer's
share of the time. No database, no network: plans are built in memory.

    .venv/bin/python bench/render.py [--runs 30] [--items 60]
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
    options = parser.parse_args()
    bench("example issue", example_plan(), options.runs)
    large = large_plan(options.items)
    bench(f"{options.items}-item issue", large, options.runs)
    fit(large, max(3, options.runs // 5))


def fit(plan: IssuePlan, runs: int) -> None:
    """Print what fitting a too-large issue under the clip costs (`render_for_inbox`)."""
    env = make_environment(None)
    print(f"\nfitted under {INBOX_HTML_LIMIT // 1024} KB for the inbox, median of {runs} runs")
    print(f"{'lang':<5}{'items':>6}{'shown':>7}{'HTML KB':>9}{'ms':>9}")
    for variant in plan.variants:
        language = variant.language
        ms, rendered = timed(runs, partial(render_for_inbox, plan, language, links(language), env))
        shown = rendered.html.count("<h3")
        size = html_size(rendered.html) / 1024
        print(f"{language:<5}{variant.item_count:>6}{shown:>7}{size:>9.1f}{ms:>9.1f}")


if __name__ == "__main__":
    main()
