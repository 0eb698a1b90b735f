"""Issue slots: the scheduled moments issues belong to ("mon 08:00" weekly, "08:00" daily).

An issue is keyed by its cadence and slot in the database, so a slot is drafted and sent
once however many times a run is started. Wall-clock times are in the publication time
zone and hold across daylight-saving changes.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Schedule:
    """When issues of one cadence go out: a time of day, on one weekday or every day."""

    cadence: str
    at: time
    weekday: int | None
    """0 = Monday; None for daily."""


def _time(text: str) -> time:
    match = _TIME.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a time like 08:00")
    return time(int(match.group(1)), int(match.group(2)))


def parse_weekly(text: str) -> Schedule:
    """Parse "mon 08:00"."""
    parts = text.strip().lower().split()
    if len(parts) != 2 or parts[0][:3] not in DAYS:
        raise ValueError(f'{text!r} is not a weekly schedule like "mon 08:00"')
    return Schedule("weekly", _time(parts[1]), DAYS.index(parts[0][:3]))


def parse_daily(text: str) -> Schedule:
    """Parse "08:00"."""
    return Schedule("daily", _time(text), None)


def _at(day: date, schedule: Schedule, zone: zoneinfo.ZoneInfo) -> datetime:
    # zoneinfo resolves a wall time that does not exist (spring forward) by fold=0 rules,
    # i.e. 02:30 on the last Sunday of March becomes 03:30; times that exist twice take the
    # first. Either way the result is a real instant.
    local = datetime.combine(day, schedule.at, zone)
    return local.astimezone(UTC)


def slot_on_or_after(schedule: Schedule, moment: datetime, timezone: str) -> datetime:
    """Return the first slot at or after `moment`, as aware UTC."""
    zone = zoneinfo.ZoneInfo(timezone)
    day = moment.astimezone(zone).date()
    for offset in range(8):
        candidate_day = day + timedelta(days=offset)
        if schedule.weekday is not None and candidate_day.weekday() != schedule.weekday:
            continue
        candidate = _at(candidate_day, schedule, zone)
        if candidate >= moment:
            return candidate
    raise AssertionError("a weekly slot always falls within 8 days")  # pragma: no cover


def next_slot(schedule: Schedule, slot: datetime, timezone: str) -> datetime:
    """Return the slot after `slot`."""
    return slot_on_or_after(schedule, slot + timedelta(minutes=1), timezone)


def current_slot(schedule: Schedule, now: datetime, timezone: str, grace: timedelta) -> datetime:
    """Return the slot a run at `now` works on: the first one not more than `grace` ago."""
    return slot_on_or_after(schedule, now - grace, timezone)
