"""The change log of a draft's curation: every change the editor makes is kept with what
the curation was before it, so the desk can list the changes and undo the last one.

The log lives in the issue's curation JSON (`history`, newest last, at most
`HISTORY_MAX` entries) and so survives every re-draft of the slot, like the curation.
Each entry says when, what changed (one `{"kind", "item"}` per curation key that
changed; `item` names the item when one is concerned) and the curation before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

HISTORY_MAX = 50
CURATION_KEYS = (
    "pinned",
    "dropped",
    "order",
    "intro",
    "subject",
    "titles",
    "split",
    "joined",
    "edits",
    "moved",
    "hidden",
    "added",
)
"""The curation JSON's keys the editor changes (and undo puts back)."""
_PER_ITEM = ("pinned", "dropped", "split", "edits", "moved", "hidden", "added")


@dataclass(frozen=True)
class Change:
    """One line of the change log."""

    at: datetime
    kind: str
    """A curation key: "dropped", "edits", "order", …"""
    item: str = ""
    """The title of the item concerned ("" when none is)."""


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {str(k) for k in value}
    if isinstance(value, list | tuple):
        return {str(k) for k in value if not isinstance(k, list | tuple)}
    return set()


def _changed_items(old: Any, new: Any) -> list[str]:
    """The keys of the items whose entry differs between `old` and `new`."""
    if isinstance(old, dict) or isinstance(new, dict):
        old_map, new_map = dict(old or {}), dict(new or {})
        return sorted(k for k in set(old_map) | set(new_map) if old_map.get(k) != new_map.get(k))
    return sorted(_keys(old) ^ _keys(new))


def record(
    raw: dict[str, Any], before: dict[str, Any], titles: dict[str, str], now: datetime
) -> None:
    """Add an entry to `raw`'s log for the difference between `before` and `raw` (nothing
    when nothing changed). `titles` names the items by key."""
    known = {**titles, **dict(before.get("titles") or {}), **dict(raw.get("titles") or {})}
    changes: list[dict[str, str]] = []
    for name in CURATION_KEYS:
        if name == "titles" or (before.get(name) or None) == (raw.get(name) or None):
            continue
        keys = _changed_items(before.get(name), raw.get(name)) if name in _PER_ITEM else []
        if keys:
            changes.extend({"kind": name, "item": str(known.get(key, key))} for key in keys)
        else:
            changes.append({"kind": name, "item": ""})
    if not changes:
        return
    log = list(raw.get("history") or [])
    log.append({"at": now.isoformat(), "changes": changes, "before": before})
    raw["history"] = log[-HISTORY_MAX:]


def changes_of(raw: dict[str, Any]) -> tuple[tuple[Change, ...], ...]:
    """The change log, newest first: one tuple of changes per time the editor saved."""
    found = []
    for entry in reversed(list(raw.get("history") or [])):
        try:
            at = datetime.fromisoformat(str(entry["at"]))
        except (KeyError, TypeError, ValueError):
            continue
        found.append(
            tuple(
                Change(at=at, kind=str(c.get("kind", "")), item=str(c.get("item", "")))
                for c in entry.get("changes") or ()
                if isinstance(c, dict)
            )
        )
    return tuple(found)


def undo(raw: dict[str, Any]) -> bool:
    """Put back the curation before the last change, and forget that change; False when
    the log is empty."""
    log = list(raw.get("history") or [])
    if not log:
        return False
    last = log.pop()
    before = dict(last.get("before") or {})
    # An added item stays stored (it is an entry like any other): undoing drops it.
    gone = [k for k in raw.get("added") or () if k not in (before.get("added") or ())]
    if gone:
        before["dropped"] = [*(before.get("dropped") or ()), *gone]
        titles = dict(raw.get("titles") or {})
        before["titles"] = {**dict(before.get("titles") or {}), **titles}
    for name in CURATION_KEYS:
        value = before.get(name)
        if value is None:
            raw.pop(name, None)
        else:
            raw[name] = value
    raw["history"] = log
    return True
