"""Fitting an issue under the inbox clip costs O(log items) renders (a safeguarded bisection
on how many items go), and keeps as many items as fit."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from digest.compose import IssuePlan
from digest.render import email
from digest.render.environment import make_environment
from tests.render.plans import large_plan, links


def _sizes(plan: IssuePlan, weights: list[int], base: int) -> int:
    """A size model: the frame plus each shown item's bytes (uneven, like real items)."""
    shown = {item.key for section in plan.variant("en").sections for item in section.items}
    return base + sum(w for key, w in zip(_keys(plan), weights, strict=True) if key in shown)


def _keys(plan: IssuePlan) -> list[str]:
    return [
        item.key
        for section in plan.variant("en").sections
        for item in (*section.items, *section.rest)
    ]


@pytest.mark.parametrize(("items", "limit"), [(100, 20_000), (1000, 90_000), (4000, 15_000)])
def test_fitting_renders_a_logarithmic_number_of_times(
    monkeypatch: pytest.MonkeyPatch, items: int, limit: int
) -> None:
    plan = large_plan(items)
    env = make_environment(None)
    real = email.render_email(large_plan(3), "en", links("en"), env)
    weights = [300 + (n * 7919) % 900 for n in range(plan.variant("en").item_count)]
    renders: list[int] = []

    def fake_render(candidate: IssuePlan, *args: Any) -> Any:
        size = _sizes(candidate, weights, 5_000)
        renders.append(candidate.variant("en").item_count)
        return replace(real, html=str(size))

    monkeypatch.setattr(email, "render_email", fake_render)
    monkeypatch.setattr(email, "sent_size", lambda html: int(html))
    fitted = email.render_for_inbox(plan, "en", links("en"), env, limit=limit)

    total = plan.variant("en").item_count
    kept = total - fitted.moved
    assert int(fitted.html) <= limit
    # The most that fit: one more item (the next to go back) would pass the limit.
    one_more = email._without_last_items(plan, "en", fitted.moved - 1)
    assert _sizes(one_more, weights, 5_000) > limit
    assert 1 <= kept < total
    assert len(renders) <= 2 * math.ceil(math.log2(total)) + 2, renders


def test_a_real_oversized_issue_fits_in_few_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = large_plan(200)
    env = make_environment(None)
    calls: list[int] = []
    real = email.render_email

    def counting(candidate: IssuePlan, *args: Any) -> Any:
        calls.append(candidate.variant("en").item_count)
        return real(candidate, *args)

    monkeypatch.setattr(email, "render_email", counting)
    fitted = email.render_for_inbox(plan, "en", links("en"), env)
    assert email.sent_size(fitted.html) <= email.INBOX_HTML_LIMIT
    assert fitted.moved > 0
    assert len(calls) <= 2 * math.ceil(math.log2(plan.variant("en").item_count)) + 2
