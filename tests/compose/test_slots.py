"""Slots: wall-clock schedules in the publication time zone, across DST, with a grace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digest.compose import slots

TZ = "Europe/Brussels"
WEEKLY = slots.parse_weekly("mon 08:00")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_weekly_slot_is_monday_eight_local_across_dst() -> None:
    # Before the last Sunday of October Brussels is UTC+2, after it UTC+1.
    assert slots.slot_on_or_after(WEEKLY, utc(2026, 10, 20), TZ) == utc(2026, 10, 26, 7)
    assert slots.slot_on_or_after(WEEKLY, utc(2026, 10, 17), TZ) == utc(2026, 10, 19, 6)
    # Last Sunday of March: 29 March 2026; the Monday after is UTC+2 again.
    assert slots.slot_on_or_after(WEEKLY, utc(2026, 3, 25), TZ) == utc(2026, 3, 30, 6)


def test_a_late_run_still_belongs_to_its_slot_within_the_grace() -> None:
    grace = timedelta(hours=6)
    monday_eight = utc(2026, 11, 23, 7)
    assert (
        slots.current_slot(WEEKLY, monday_eight + timedelta(minutes=5), TZ, grace) == monday_eight
    )
    assert slots.current_slot(WEEKLY, monday_eight + timedelta(hours=7), TZ, grace) == (
        monday_eight + timedelta(days=7)
    )
    assert slots.next_slot(WEEKLY, monday_eight, TZ) == monday_eight + timedelta(days=7)


def test_daily_slot() -> None:
    daily = slots.parse_daily("08:00")
    assert slots.slot_on_or_after(daily, utc(2026, 11, 23, 9), TZ) == utc(2026, 11, 24, 7)


@pytest.mark.parametrize("text", ["monday", "mon 8", "xyz 08:00", "mon 25:00"])
def test_bad_weekly_schedules(text: str) -> None:
    with pytest.raises(ValueError, match="is not a"):
        slots.parse_weekly(text)
