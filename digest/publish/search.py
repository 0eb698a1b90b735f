"""The archive's search: an index of every published item per language, built at publish
time (`archive/<lang>/search.json`, which names the parts holding the older issues,
`search-<n>.json`: `publish.paging`), and the one way of matching a query against it.

The same index serves both ways of reaching the archive: a static host runs the small
script `search.js` in the reader's browser; `digest serve` (whose Content-Security-Policy
allows no script) matches on the server with `search()` and sends the results as HTML.
A query matches an item when every word of it appears in the item's title or summary,
ignoring case and accents ("ecole" finds "École"); newest issues first.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("search.js")
_PART = re.compile(r"search-[0-9]{1,9}\.json")
SUMMARY_CHARS = 240
MAX_RESULTS = 100


@dataclass(frozen=True)
class IndexedItem:
    """One published item as the search index holds it."""

    title: str
    url: str
    """The story at its source, else the issue page."""
    issue_url: str
    number: int
    day: str
    """The issue's day, as readers of the language write it."""
    summary: str


def fold(text: str) -> str:
    """Lowercase `text` and strip its accents, for matching: "École" → "ecole"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def shorten(text: str, limit: int = SUMMARY_CHARS) -> str:
    """`text` on one line, cut at a word before `limit` characters."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[: limit - 1].rsplit(" ", 1)[0] + "…"


def index_bytes(items: Iterable[IndexedItem]) -> bytes:
    """The search index as compact UTF-8 JSON (a list, in the order given)."""
    return records_bytes([asdict(item) for item in items])


def records_bytes(records: Sequence[Mapping[str, Any]]) -> bytes:
    """The search index from records already in `IndexedItem`'s shape (`asdict` of one,
    as the publish manifest keeps them), without building the items again."""
    return json.dumps(records, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def index_document(records: Sequence[Mapping[str, Any]], parts: Sequence[str]) -> bytes:
    """`search.json`: the records of the newest issues, and the names of the parts that
    hold the older ones (newest first, each a file next to it written by `records_bytes`),
    so publishing one more issue writes the newest part only."""
    document = {"items": list(records), "parts": list(parts)}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def parts_of(data: bytes) -> list[str]:
    """The names of the parts `search.json` (`index_document`) lists, newest first."""
    try:
        document = json.loads(data)
    except ValueError:
        return []
    parts = document.get("parts") if isinstance(document, dict) else None
    if not isinstance(parts, list):
        return []
    return [part for part in parts if isinstance(part, str) and _PART.fullmatch(part)]


def read_index(data: bytes) -> list[IndexedItem]:
    """Read an index written by `index_bytes` or `index_document` (its own items, not its
    parts'); records of another shape are skipped."""
    try:
        records = json.loads(data)
    except ValueError:
        return []
    if isinstance(records, dict):
        records = records.get("items")
    found = []
    for record in records if isinstance(records, list) else []:
        try:
            found.append(IndexedItem(**record))
        except TypeError:
            continue
    return found


def search(items: Sequence[IndexedItem], query: str, limit: int = MAX_RESULTS) -> list[IndexedItem]:
    """Return the items whose title or summary holds every word of `query` (none: none),
    each title and URL once (the first, newest, of the parts read together)."""
    words = fold(query).split()
    if not words:
        return []
    found = []
    seen: set[tuple[str, str]] = set()
    for item in items:
        if (item.title, item.url) in seen:
            continue
        seen.add((item.title, item.url))
        text = fold(f"{item.title} {item.summary}")
        if all(word in text for word in words):
            found.append(item)
            if len(found) >= limit:
                break
    return found


def script() -> bytes:
    """The browser's half of the search, for static hosting."""
    return SCRIPT.read_bytes()
