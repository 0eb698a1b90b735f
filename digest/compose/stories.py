"""Stories: the same news told several times, found and grouped. Pure: no I/O, no clock.

Two kinds of sameness:

- *translations*: the hub publishes a story in Dutch, French and often English, under
  different URLs and titles. Two items in different languages are one story when a link
  of one is a link (or `hreflang` alternate / canonical) of the other, or when their
  evidence scores at least `TRANSLATION_THRESHOLD`: a shared image (0.5), a shared
  attachment (a PDF, an office file: 0.5), and the share
  of names and numbers they have in common (proper names, acronyms, numbers, dates: what
  translation keeps), counted only when they were published within `WINDOW_DAYS`;
- *duplicates*: the same story from two sources or two sections (same language or not),
  with the same or a near title (rapidfuzz `token_set_ratio` ≥ `TITLE_RATIO`) within the
  window.

It is linear: each item's keys (links, image, names and numbers, title words) are
computed once; pairs are only scored inside blocks that share a key, and keys held by more
than `BLOCK_CAP` items (a year, a city every item names) make no block. Groups are closed
with union-find, so a French and an English version joined through the Dutch one are one
story.

The editor can split and join: `split` keys never join anything; `joined` pairs always do.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations

from rapidfuzz import fuzz

WINDOW_DAYS = 7
"""Versions of one story are published within this many days of each other."""
DUPLICATE_WINDOW_DAYS = 14
"""Near-identical titles count as the same story within this many days (a page without a
date is dated when first seen, which can be days after the feed that carried it)."""
TRANSLATION_THRESHOLD = 0.4
"""On the hub's items, true translations score 0.47 or more, unrelated pairs 0.25 or less
(tests/compose/test_stories.py pins both)."""
MIN_SHARED = 2
"""Names and numbers count only when at least this many are shared."""
NUMBER_WEIGHT = 2
"""Numbers (dates, counts) survive translation unchanged, names not always
("Mechelen" / "Malines"): a shared number counts twice."""
IMAGE_WEIGHT = 0.5
TITLE_RATIO = 90.0
MIN_TITLE_WORDS = 3
"""Titles shorter than this ("Newsletter", "Agenda") never make duplicates by themselves."""
BLOCK_CAP = 40
"""A key shared by more items than this makes no candidate pairs (it identifies nothing)."""
SIGNATURE_CHARS = 600
"""How much of the text the names and numbers are taken from (the lead says who and when)."""

_WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")
_NAME_OR_NUMBER = re.compile(r"(?<![^\W_])(?:\d+|[A-ZÀ-ÖØ-Þ][^\W_]*)")
"""A number, or a word starting with a capital (Latin-1 letters; the head of "X-project")."""
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n)([\"'“‘«(]?)$")
_IMAGE = re.compile(r'<img[^>]*?\ssrc="([^"]+)"')
_ATTACHMENT = re.compile(
    r'<a[^>]*?\shref="([^"?#]+\.(?:pdf|docx?|xlsx?|pptx?|odt|zip))(?:[?#][^"]*)?"',
    re.IGNORECASE,
)
_STOP_WORDS = """
the a an of and in on for to with de het een van en op voor met le la les des du un une et
au aux pour sur dans par
"""
_STOP = frozenset(_STOP_WORDS.split())


@dataclass(frozen=True)
class StoryItem:
    """What grouping needs to know of one item."""

    key: str
    title: str
    text: str
    language: str
    published_at: datetime
    link: str | None = None
    alternates: tuple[str, ...] = ()
    """`hreflang` alternates and the canonical link of the item's page or feed entry."""
    image: str | None = None
    html: str = ""
    """The item's HTML, read only for its first image when `image` is None."""


@dataclass(frozen=True)
class _Keys:
    links: frozenset[str]
    image: str | None
    attachments: frozenset[str]
    signature: frozenset[str]
    title: str
    title_words: frozenset[str]
    day: float


@functools.lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Lowercase without accents: "Région" and "region" match."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def normal_link(link: str | None) -> str | None:
    """A link without scheme, www, query, fragment or trailing slash, lowercased."""
    if not link:
        return None
    bare = re.sub(r"^[a-z]+://(www\.)?", "", link.strip().lower())
    return re.split(r"[?#]", bare, maxsplit=1)[0].rstrip("/") or None


def _image_key(item: StoryItem) -> str | None:
    source = item.image
    if not source and item.html:
        found = _IMAGE.search(item.html)
        source = found.group(1) if found else None
    if not source:
        return None
    # The file name: sizes and styles of one image live in different folders.
    name = re.split(r"[?#]", source, maxsplit=1)[0].rstrip("/").rsplit("/", 1)[-1].lower()
    return name if len(name) >= 5 else None


def signature(title: str, text: str) -> frozenset[str]:
    """The names and numbers of a text: what survives translation.

    Numbers (dates, counts, years), acronyms and capitalized words that do not start a
    sentence, folded; "IncluCities-project" gives "inclucities"."""
    found: set[str] = set()
    for source in (title, text[:SIGNATURE_CHARS]):
        # Only numbers and capitalized words match: lowercase words cost nothing.
        for match in _NAME_OR_NUMBER.finditer(source):
            word = match.group(0)
            if word[0].isdigit():
                found.add(word.lstrip("0") or "0")
                continue
            start = match.start()
            before = source[max(0, start - 4) : start]
            if _SENTENCE_START.search(before) and not _is_acronym(word):
                continue
            folded = fold(word)
            if len(folded) >= 3 and folded not in _STOP:
                found.add(folded)
    return frozenset(found)


def _is_acronym(word: str) -> bool:
    return sum(map(str.isupper, word)) >= 2  # two capitals are two letters


def _keys(item: StoryItem) -> _Keys:
    links = {normal_link(link) for link in (item.link, *item.alternates)}
    title = " ".join(_WORD.findall(fold(item.title)))
    return _Keys(
        links=frozenset(link for link in links if link),
        image=_image_key(item),
        attachments=frozenset(
            name.rsplit("/", 1)[-1].lower() for name in _ATTACHMENT.findall(item.html)
        ),
        signature=signature(item.title, item.text),
        title=title,
        title_words=frozenset(w for w in title.split() if len(w) >= 4 and w not in _STOP),
        day=item.published_at.timestamp() / 86400,
    )


def score(a: StoryItem, b: StoryItem) -> float:
    """How surely `a` and `b` are one story (1.0: certain); `group` joins at the threshold."""
    return _score(a, b, _keys(a), _keys(b))


def _score(a: StoryItem, b: StoryItem, ka: _Keys, kb: _Keys) -> float:
    if ka.links & kb.links:
        return 1.0
    apart = abs(ka.day - kb.day)
    if (
        apart <= DUPLICATE_WINDOW_DAYS
        and len(ka.title.split()) >= MIN_TITLE_WORDS
        and len(kb.title.split()) >= MIN_TITLE_WORDS
        and fuzz.token_set_ratio(ka.title, kb.title) >= TITLE_RATIO
        and fuzz.ratio(ka.title, kb.title) >= TITLE_RATIO - 20
    ):
        return 1.0
    if a.language == b.language or apart > WINDOW_DAYS:
        return 0.0
    value = IMAGE_WEIGHT if ka.image and ka.image == kb.image else 0.0
    if ka.attachments & kb.attachments:
        value += IMAGE_WEIGHT  # the same report or flyer, attached to both
    shared = ka.signature & kb.signature
    smaller = min(_weight(ka.signature), _weight(kb.signature))
    if len(shared) >= MIN_SHARED and smaller:
        value += _weight(shared) / smaller
    return min(value, 1.0)


def _weight(tokens: frozenset[str]) -> int:
    return sum(NUMBER_WEIGHT if token.isdigit() else 1 for token in tokens)


def group(
    items: Sequence[StoryItem],
    *,
    split: Iterable[str] = (),
    joined: Iterable[tuple[str, str]] = (),
) -> list[list[int]]:
    """Return the stories among `items` as lists of indices, each in input order, the
    stories ordered by their first member. Every item is in exactly one story."""
    keys = [_keys(item) for item in items]
    alone = set(split)
    parent = list(range(len(items)))

    def find(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    blocks: dict[str, list[int]] = defaultdict(list)
    for n, k in enumerate(keys):
        if items[n].key in alone:
            continue
        for link in k.links:
            blocks["l:" + link].append(n)
        if k.image:
            blocks["i:" + k.image].append(n)
        for name in k.attachments:
            blocks["a:" + name].append(n)
        for token in k.signature:
            blocks["s:" + token].append(n)
        for word in k.title_words:
            blocks["t:" + word].append(n)
    seen: set[tuple[int, int]] = set()
    for members in blocks.values():
        if len(members) < 2 or len(members) > BLOCK_CAP:
            continue
        for a, b in combinations(members, 2):
            if (a, b) in seen or find(a) == find(b):
                continue
            seen.add((a, b))
            if _score(items[a], items[b], keys[a], keys[b]) >= TRANSLATION_THRESHOLD:
                union(a, b)
    index = {item.key: n for n, item in enumerate(items)}
    for first, second in joined:
        if first in index and second in index:
            union(index[first], index[second])
    stories: dict[int, list[int]] = {}
    for n in range(len(items)):
        stories.setdefault(find(n), []).append(n)
    return sorted(stories.values(), key=lambda members: members[0])
