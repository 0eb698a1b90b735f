"""Main content of a page or feed body: the article's title, date and paragraphs, without
the page furniture around them. Pure: text in, `Extracted` out.

Two layers:

1. trafilatura (chosen over readability-lxml, see docs/publishing.md "Main content")
   finds the main block of an HTML document and splits it into headings and paragraphs,
   dropping menus, footers, lists and tables;
2. our own line rules, for what the hub's pages still carry after that (and what plain
   text bodies carry anyway): Drupal's "Submitted by … on", "Subscribe to …", "Read
   more", doubled menu words ("About / About"), menu teasers glued to their label
   ("WHO WE AREThe International…"), "-" bullets of a flattened menu, text hard-wrapped
   at 70 columns, and a date or an empty dateline left at the start of the first sentence.

`extract_html` and `extract_text` return the same shape, so a seed page saved as text and
the same page served as HTML give the same title and first sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from html import unescape

import trafilatura
from lxml import etree
from trafilatura.utils import RE_FILTER, sanitize_tree
from trafilatura.xml import remove_empty_elements, strip_double_tags

from digest.collect.clean import html_to_text, shorten

MAX_TITLE_WORDS = 30
"""A line longer than this is prose, never a title."""
PROSE_WORDS = 12
"""A paragraph of at least this many words that ends a sentence starts the article."""
WRAP_MIN, WRAP_MAX = 45, 80
"""Lengths of lines that were hard-wrapped (mail archives, old CMSs): joined back."""

_BOILERPLATE_LINES = re.compile(
    r"""^(?:
        submitted\ by\ .{1,80}?\ on(?:\ .{0,40})?       # Drupal's byline ("on" + date)
      | (?:ingediend|soumis)\ (?:door|par)\ .{1,80}   # the same in nl/fr
      | subscribe\ to\ .{1,80}                        # Drupal's term-feed trailer
      | (?:read\ more|lees\ meer|lire\ la\ suite|en\ savoir\ plus|learn\ more)\W{0,3}
      | (?:share|partager|delen)(?:\ (?:on|sur|via|op)\ .{1,40})?
      | (?:we\ use\ cookies|this\ (?:web)?site\ uses\ cookies|accept(?:\ all)?\ cookies).{0,200}
      | (?:contact|publications?|publicaties|nieuws|news|actualités|resources)
      | [-–—•·|*]+
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
"""Whole lines that are page furniture wherever they stand."""

_BULLET_MENU = re.compile(r"^[-–•*]\s+\S.{0,40}$")
"""`- Data and Resources`: an entry of a menu flattened to text (short, bulleted)."""
_SENTENCE_END = re.compile(r"[.!?…:;][\"'”’»)]*$")
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "januari|februari|maart|mei|juni|juli|augustus|oktober|"
    "janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre|"
    "novembre|décembre|decembre|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|okt|nov|dec"
)
_DATE_TEXT = (
    rf"(?:\d{{1,2}}(?:st|nd|rd|th)?\.?\s+(?:{_MONTHS})\.?\s+\d{{4}}"
    rf"|(?:{_MONTHS})\.?\s+\d{{1,2}},?\s+\d{{4}}"
    r"|\d{4}-\d{2}-\d{2}|\d{1,2}[/.]\d{1,2}[/.]\d{4})"
)
_LEADING_DATE = re.compile(rf"^(?:{_DATE_TEXT})\s*(?:[-–—|:,]\s*)?", re.IGNORECASE)
"""A publication date glued before the first sentence ("13 June 2011 – On Tuesday …")."""
_EMPTY_DATELINE = re.compile(r"^[-–—]\s+(?=[A-Z])")
"""What is left of a dateline whose place or date was markup ("<time>Brussels</time> – …")."""
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_PLAIN_PARAGRAPHS = re.compile(r"\s*(?:<p>[^<>]*</p>\s*){1,12}")
"""Sanitized HTML that is nothing but paragraphs of plain text (no link, list, heading…)."""
_PARAGRAPH_TEXT = re.compile(r"<p>([^<>]*)</p>")


@dataclass(frozen=True)
class Extracted:
    """The main content of one document."""

    title: str | None
    """The article's own heading, or None when the text starts with prose."""
    date: date | None
    """The publication date the document declares (metadata or a leading date)."""
    paragraphs: tuple[str, ...]
    """Prose only: no headings, lists, tables, captions or media; whitespace collapsed."""

    @property
    def text(self) -> str:
        """The paragraphs, separated by blank lines."""
        return "\n\n".join(self.paragraphs)

    @property
    def first_sentence(self) -> str:
        """The first sentence of the first paragraph (the whole paragraph if it has one)."""
        if not self.paragraphs:
            return ""
        return first_sentence(self.paragraphs[0])


def first_sentence(text: str) -> str:
    """Return the first sentence of `text`: up to the first . ! ? followed by a capital."""
    match = re.search(r"[.!?…][\"'”’»)]*\s+(?=[\"'“‘«(]?[A-ZÀ-Þ0-9])", text)
    return text[: match.end()].strip() if match else text.strip()


def extract_html(html: str, *, title: str | None = None) -> Extracted:
    """Return the main content of an HTML document or fragment.

    `title` is the title the feed or page already gives: a paragraph repeating it is
    dropped. A fragment (a feed's body) is wrapped in a document first: trafilatura
    ignores bare fragments.
    """
    return _extract_html(html, title=title, metadata=True)


def _extract_html(html: str, *, title: str | None, metadata: bool) -> Extracted:
    """`extract_html`; without `metadata`, no date is looked for (a third of the time)."""
    if not html.strip():
        return Extracted(title=None, date=None, paragraphs=())
    document = (
        html
        if re.search(r"<html[\s>]", html[:2000], re.IGNORECASE)
        else (f"<html><body>{html}</body></html>")
    )
    if not metadata:
        plain = _plain_paragraphs(html)
        found = plain if plain is not None else _text_lines(document)
        return _from_lines(found, title=title, declared=None)
    result = trafilatura.extract(
        document,
        output_format="xml",
        include_tables=False,
        include_images=False,
        include_comments=False,
        include_formatting=False,
        include_links=False,
        favor_precision=True,
        with_metadata=metadata,
        deduplicate=False,
    )
    if not result:
        return _from_lines([], title=title, declared=None)
    root = etree.fromstring(result.encode("utf-8"))
    lines: list[tuple[str, str]] = []
    main = root.find("main")
    for element in main.iter("head", "p") if main is not None else ():
        text = " ".join("".join(str(t) for t in element.itertext()).split())
        if text and not _inside_list(element):
            lines.append(("head" if element.tag == "head" else "p", text))
    declared = _iso(root.get("date") or "")
    return _from_lines(lines, title=title, declared=declared)


def _text_lines(document: str) -> list[tuple[str, str]]:
    """The headings and paragraphs trafilatura finds in `document`, as `extract(...,
    output_format="xml")` gives them, without building, serializing and fingerprinting
    that XML document (most of the time `extract` takes on a feed's teaser)."""
    found = trafilatura.bare_extraction(
        document,
        include_tables=False,
        include_images=False,
        include_comments=False,
        include_formatting=False,
        include_links=False,
        favor_precision=True,
        with_metadata=False,
        deduplicate=False,
        as_dict=False,
    )
    body = getattr(found, "body", None)
    if body is None:
        return []
    # What `extract` does to the tree before writing it out (trafilatura.xml).
    strip_double_tags(body)
    remove_empty_elements(body)
    sanitize_tree(body)
    lines: list[tuple[str, str]] = []
    for element in body.iter("head", "p"):
        text = " ".join("".join(str(t) for t in element.itertext()).split())
        if text and not _inside_list(element):
            lines.append(("head" if element.tag == "head" else "p", text))
    return lines


def _plain_paragraphs(html: str) -> list[tuple[str, str]] | None:
    """The lines trafilatura finds in `html` when it is only paragraphs of plain text (most
    feed teasers), without running it; None when it may find anything else.

    For such a body trafilatura has no furniture to remove and keeps every paragraph, its
    whitespace collapsed, except those it drops whatever their place: an empty one, one
    repeating or contained in another, a line of its share-button filter (`RE_FILTER`:
    "Print", "Facebook", …) and, with its non-printable characters, one it rewrites. Any of
    these, and trafilatura decides (tests/collect/test_extract_plain.py compares both ways).
    Text without a tag (a plain teaser) is in no element trafilatura reads: no line.
    """
    if "<" not in html:
        return []  # text outside any element: trafilatura finds no paragraph in it
    if not _PLAIN_PARAGRAPHS.fullmatch(html):
        return None
    raws = [unescape(raw) for raw in _PARAGRAPH_TEXT.findall(html)]
    texts = [" ".join(raw.split()) for raw in raws]
    for n, (raw, text) in enumerate(zip(raws, texts, strict=True)):
        if not text or not text.isprintable() or any(map(RE_FILTER.match, raw.splitlines())):
            return None
        if any(n != other and text in texts[other] for other in range(len(texts))):
            return None
    return [("p", text) for text in texts]


def _inside_list(element: etree._Element) -> bool:
    parent = element.getparent()
    while parent is not None:
        if parent.tag in ("list", "table", "figure"):
            return True
        parent = parent.getparent()
    return False


def main_text(html: str, *, title: str | None = None, limit: int = 500) -> str:
    """Return the prose of `html` (sanitized HTML: a feed's body or a page's main block)
    as plain text, at most `limit` characters, for teasers and excerpts.

    Falls back to the whole text when the extractor finds no paragraph (a one-line
    teaser, a body that is all list): better a list's words than nothing.
    """
    found = _extract_html(html, title=title, metadata=False).text
    return shorten(found, limit) if found else html_to_text(html, limit)


def extract_text(text: str, *, title: str | None = None) -> Extracted:
    """Return the main content of a plain-text document (one block per line)."""
    lines = [("p", line.strip()) for line in unwrap(text.splitlines()) if line.strip()]
    return _from_lines(lines, title=title, declared=None)


def unwrap(lines: list[str]) -> list[str]:
    """Join lines hard-wrapped inside a paragraph; a title or a short line stays alone."""
    joined: list[str] = []
    wrapping = False
    for line in lines:
        stripped = line.strip()
        if wrapping and joined and stripped:
            joined[-1] = f"{joined[-1]} {stripped}"
        else:
            joined.append(line)
        # A line of a wrapped paragraph is 45-80 characters and does not end a sentence;
        # the first one of a paragraph also ends mid-phrase (a lowercase word or comma),
        # which a title ("… Phase 2") does not.
        wrapping = bool(stripped) and (
            WRAP_MIN <= len(stripped) <= WRAP_MAX
            and not _SENTENCE_END.search(stripped)
            and (wrapping or bool(re.search(r"[a-z,]$", stripped)))
        )
    return joined


def _furniture(lines: list[tuple[str, str]]) -> list[bool]:
    """Mark the lines that are page furniture by our rules."""
    marks = [False] * len(lines)
    texts = [text for _, text in lines]
    for n, text in enumerate(texts):
        if _BOILERPLATE_LINES.match(text) or _BULLET_MENU.match(text):
            marks[n] = True
        # "About" / "About": a menu label doubled by its mobile copy.
        if n + 1 < len(texts) and text == texts[n + 1] and len(text.split()) <= 6:
            marks[n] = marks[n + 1] = True
        # "Who we are" / "WHO WE AREThe …": a menu label and its teaser glued to it.
        if n + 1 < len(texts):
            following = texts[n + 1]
            if (
                len(text.split()) <= 6
                and following.lower().startswith(text.lower())
                and following[len(text) : len(text) + 1].isalpha()
            ):
                marks[n] = marks[n + 1] = True
        if re.match(r"^(?:[A-Z]{2,}\s?)+[A-Z][a-z]", text) and n and marks[n - 1]:
            marks[n] = True
    return marks


def _is_prose(text: str) -> bool:
    return len(text.split()) >= PROSE_WORDS and bool(_SENTENCE_END.search(text))


def _is_heading(kind: str, text: str) -> bool:
    words = len(text.split())
    return kind == "head" or (0 < words <= MAX_TITLE_WORDS and not _SENTENCE_END.search(text))


def _from_lines(
    lines: list[tuple[str, str]], *, title: str | None, declared: date | None
) -> Extracted:
    marks = _furniture(lines)
    kept = [
        (kind, text) for (kind, text), furniture in zip(lines, marks, strict=True) if not furniture
    ]
    # Everything before the article's heading (the last heading-like line before the
    # first prose paragraph) is menu, breadcrumb or banner.
    first_prose = next((n for n, (_, text) in enumerate(kept) if _is_prose(text)), len(kept))
    heading_at = next((n for n in range(first_prose - 1, -1, -1) if _is_heading(*kept[n])), None)
    if first_prose == len(kept):
        # No full paragraph (a short teaser): every line but the headings is the text.
        heading_at, first_prose = None, 0
    found_title = kept[heading_at][1] if heading_at is not None else None
    body = kept[heading_at + 1 :] if heading_at is not None else kept[first_prose:]
    known = " ".join((title or found_title or "").split()).lower()
    paragraphs: list[str] = []
    found_date = declared
    for kind, text in body:
        if kind == "head":
            continue  # sub-headings and title-like lines never enter the prose
        if known and text.strip("\"'“”").lower() == known:
            continue  # the title repeated (as a caption or an alt text left as text)
        if not paragraphs:
            text, leaked = _strip_leading_date(text)
            found_date = found_date or leaked
        if text:
            paragraphs.append(text)
    return Extracted(title=found_title, date=found_date, paragraphs=tuple(paragraphs))


def _strip_leading_date(text: str) -> tuple[str, date | None]:
    """Remove a date or an empty dateline from the start of the first paragraph."""
    leaked = None
    match = _LEADING_DATE.match(text)
    if match and len(text) > match.end():
        leaked = _parse_date(match.group(0))
        text = text[match.end() :]
    return _EMPTY_DATELINE.sub("", text).strip(), leaked


def _iso(value: str) -> date | None:
    match = _ISO_DATE.search(value)
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def _parse_date(value: str) -> date | None:
    iso = _iso(value)
    if iso is not None:
        return iso
    words = re.findall(r"[^\W\d_]+|\d+", value.lower())
    numbers = [int(w) for w in words if w.isdigit()]
    month = next((_MONTH_NUMBERS[w] for w in words if w in _MONTH_NUMBERS), None)
    numeric = re.match(r"\s*(\d{1,2})[/.](\d{1,2})[/.](\d{4})", value)
    try:
        if numeric:
            return date(int(numeric[3]), int(numeric[2]), int(numeric[1]))
        if month is not None and len(numbers) >= 2:
            day, year = min(numbers), max(numbers)
            return date(year, month, day)
    except ValueError:
        return None
    return None


_MONTH_NUMBERS = {
    name: number
    for number, names in enumerate(
        (
            "january januari janvier jan",
            "february februari février fevrier feb",
            "march maart mars mar",
            "april avril apr",
            "may mei mai",
            "june juni juin jun",
            "july juli juillet jul",
            "august augustus août aout aug",
            "september septembre sep sept",
            "october oktober octobre oct okt",
            "november novembre nov",
            "december décembre decembre dec",
        ),
        start=1,
    )
    for name in names.split()
}
