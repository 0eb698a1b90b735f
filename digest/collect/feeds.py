"""Parse RSS 0.9x/1.0/2.0, Atom and JSON Feed bytes into `Parsed` entries (pure: no I/O).

feedparser reads RSS and Atom; JSON Feed 1.0/1.1 is plain JSON and read here. All HTML is
sanitized by nh3 (`clean.sanitize_html`), relative URLs are resolved against the entry's
base, dates become aware UTC and languages their primary subtag ("nl-BE" → "nl").
A feed that is not well-formed still yields what it has (`bozo` becomes a warning); only a
document with no entries and no recognisable feed format is a `ParseError`.

Run it through `bounded.run_bounded`: feedparser has a quadratic regex on long author
strings (feedparser issue #562), so a hostile feed could otherwise hold a CPU for minutes.
"""

from __future__ import annotations

import calendar
import dataclasses
import hashlib
import html
import io
import json
import re
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from digest.collect import Entry, Parsed
from digest.collect.clean import clean_text, html_to_text, sanitize_html, shorten, text_to_html
from digest.collect.extract import main_text
from digest.errors import ParseError

SUMMARY_LIMIT = 500
TITLE_LIMIT = 300
DERIVED_TITLE_LIMIT = 80
"""A title made from the text when the item has none: its first words, up to this length."""
AUTHOR_LIMIT = 200
MAX_CATEGORIES = 20
MAX_HTML = 200_000
"""Sanitized HTML longer than this is replaced by its text (Gmail clips mail past ~102 KB)."""
MAX_GUID = 500
"""Longer ids are replaced by their SHA-256: still stable, and they fit a database index."""
MAX_LINK = 2000
MAX_WARNINGS = 20

_JSON_FEED_VERSION = "https://jsonfeed.org/version/"
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "html", "xhtml"})
_FEED_TYPES = frozenset({b"application/rss+xml", b"application/atom+xml", b"application/feed+json"})
_LEGACY_CHARSET = re.compile(r"(?:iso-?8859-\d+|latin-?\d|(?:windows|cp)-?125\d|(?:us-)?ascii)")
_CHARSET_PARAMETER = re.compile(r";\s*charset\s*=\s*([^;\s]+)", re.IGNORECASE)
_XML_ENCODING = re.compile(
    rb"(?:\xef\xbb\xbf)?\s*<\?xml[^>]{0,100}?encoding\s*=\s*[\"']([\w.:-]{1,40})[\"']"
)
_BOZO = {
    "CharacterEncodingOverride": "wrong character encoding declared: {}",
    "NonXMLContentType": "served with a content type that is not a feed's: {}",
    "SAXParseException": "not well-formed XML ({}); read with feedparser's lenient parser",
}
_LANGUAGE = re.compile(r"[a-z]{2,3}")
# Drupal prints "Submitted by NAME on DATE" before every teaser; in a digest it is noise.
_BYLINE = re.compile(
    r"^\s*(?:Submitted by|Ingediend door|Soumis par)\s[^<]{1,120}?\s(?:on|op|le)\b[^<]{0,80}(?=<|$)"
)
_LEADING_HEADING = re.compile(r"^\s*<h[2-6]>(.*?)</h[2-6]>", re.DOTALL)
_LINK_TAG = re.compile(rb"<link\b[^<>]{0,2000}>", re.IGNORECASE)
_TAG_ATTRIBUTE = re.compile(rb"""([a-zA-Z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")


def parse_feed(body: bytes, *, content_type: str | None, url: str) -> Parsed:
    """Return the entries, title and language of an RSS, Atom or JSON Feed document.

    `content_type` is the response's Content-Type (it carries the charset); `url` the final
    URL, used as the base for relative links and in error messages. Raises ParseError when
    the bytes are no feed at all, with a message saying what they are instead.
    """
    start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if not start:
        raise ParseError(f"{url}: the response is empty, not a feed; open the URL in a browser")
    mime = (content_type or "").split(";")[0].strip().lower()
    if start in (b"{", b"[") or (mime.endswith("json") and start != b"<"):
        return _parse_json_feed(body, url)
    return _parse_xml_feed(body, content_type, url)


def _parse_xml_feed(body: bytes, content_type: str | None, url: str) -> Parsed:
    """Parse RSS or Atom with feedparser, from bytes and headers only (no URL, no file)."""
    warnings: list[str] = []
    if declared := _misdeclared_charset(body, content_type):
        mime = (content_type or "").split(";")[0].strip() or "application/xml"
        content_type = f"{mime}; charset=utf-8"
        warnings.append(f"wrong character encoding declared: {declared}, but the bytes are UTF-8")
    result = feedparser.parse(
        io.BytesIO(body),
        response_headers={
            "content-type": content_type or "application/xml",
            "content-location": url,
        },
        # nh3 is our sanitizer. feedparser's own one (sgmllib) drops a <script> tag but
        # parses its text as markup, so `document.write('<img src=…>')` came out as a live
        # <img> that nh3 then had no reason to remove (tests/collect/test_feeds.py).
        sanitize_html=False,
        resolve_relative_uris=True,
    )
    raw_entries = _list(result, "entries")
    version = _str(result, "version") or ""
    bozo = _field(result, "bozo_exception") if _field(result, "bozo") else None
    if not raw_entries and not version:
        raise ParseError(_not_a_feed(body, content_type, url, bozo))
    if bozo is not None:
        warnings.append(_describe_bozo(bozo))
    feed = _field(result, "feed")
    feed_language = _language(_str(feed, "language"))
    # RFC 4287 §4.2.1: an Atom entry without an author has the feed's.
    feed_author = _author(feed) if version.startswith("atom") else None
    entries = [_xml_entry(raw, url, feed_language, feed_author, warnings) for raw in raw_entries]
    title = _plain(_str(feed, "title"), _str(_field(feed, "title_detail"), "type"), TITLE_LIMIT)
    return _parsed(entries, title, feed_language, warnings, "entry")


def _xml_entry(
    raw: Any, url: str, feed_language: str | None, feed_author: str | None, warnings: list[str]
) -> Entry | None:
    """Build one Entry from a feedparser entry, or None when it holds nothing to show."""
    details = [*_list(raw, "content"), _field(raw, "summary_detail"), _field(raw, "title_detail")]
    base = next((b for d in details if (b := _http_url(_str(d, "base"), url))), url)
    summary = _as_html(_str(raw, "summary"), _str(_field(raw, "summary_detail"), "type"))
    content = next(
        (h for c in _list(raw, "content") if (h := _as_html(_str(c, "value"), _str(c, "type")))),
        "",
    )
    # media:thumbnail, then image media:content / enclosures, then itunes:image.
    image_candidates = [
        *(_str(t, "url") for t in _list(raw, "media_thumbnail")),
        *(_str(m, "url") for m in _list(raw, "media_content") if _is_image(m)),
        *(_str(e, "href") for e in _list(raw, "links") if _str(e, "rel") == "enclosure"
          and _is_image(e)),
        _str(_field(raw, "image"), "href"),
    ]  # fmt: skip
    title = _plain(_str(raw, "title"), _str(_field(raw, "title_detail"), "type"), TITLE_LIMIT)
    summary_html, summary_text = _bodies(
        content or summary, summary or content, base, title, warnings
    )
    languages = (_language(_str(d, "language")) for d in details)
    updated = _utc(_field(raw, "updated_parsed"))
    return _finish(
        Entry(
            title=title,
            link=_own_link(raw, base),
            guid=_str(raw, "id"),
            summary_html=summary_html,
            summary_text=summary_text,
            author=_author(raw) or feed_author,
            language=next((lang for lang in languages if lang), feed_language),
            # RSS 1.0 (dc:date) and many Atom feeds only give `updated`: the best date we have.
            published_at=_utc(_field(raw, "published_parsed")) or updated,
            updated_at=updated,
            image_url=next((u for c in image_candidates if (u := _http_url(c, base))), None),
            categories=tuple(
                c for t in _list(raw, "tags") if (c := _str(t, "label") or _str(t, "term"))
            ),
            alternates=tuple(
                dict.fromkeys(
                    href
                    for e in _list(raw, "links")
                    if _str(e, "rel") in ("alternate", "canonical")
                    and (_str(e, "hreflang") or _str(e, "rel") == "canonical")
                    and (href := _http_url(_str(e, "href"), base))
                    and href != _own_link(raw, base)
                )
            ),
        )
    )


def _clean_strings(value: Any) -> Any:
    """`value` (decoded JSON) with every string passed through `clean_text`."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_clean_strings(item) for item in value]
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean_strings(v) for k, v in value.items()}
    return value


def _parse_json_feed(body: bytes, url: str) -> Parsed:
    """Parse JSON Feed 1.0/1.1 (https://jsonfeed.org/version/1.1/)."""
    try:
        # "\ud800" escapes decode to lone surrogates, which no encoder downstream accepts.
        document = _clean_strings(json.loads(body.decode("utf-8-sig", errors="replace")))
    except (ValueError, RecursionError) as exc:
        raise ParseError(
            f"{url}: this looks like JSON but does not parse ({exc}); open the URL in a "
            "browser, or ask the publisher to fix the feed"
        ) from None
    not_a_feed = (
        f'{url}: this is JSON, but not a JSON Feed (no "version": "{_JSON_FEED_VERSION}1.1");'
        " point the source at the site's RSS, Atom or JSON Feed URL"
    )
    if not isinstance(document, dict):
        raise ParseError(not_a_feed)
    warnings: list[str] = []
    items = document.get("items")
    version = document.get("version")
    if not (isinstance(version, str) and version.startswith(_JSON_FEED_VERSION)):
        if not (isinstance(items, list) and items):
            raise ParseError(not_a_feed)
        warnings.append("no JSON Feed version given; read as JSON Feed 1.1")
    if not isinstance(items, list):
        warnings.append('no "items" list; the feed is read as empty')
        items = []
    feed_language = _language(_str(document, "language"))
    feed_author = _json_author(document)
    entries = [_json_entry(item, url, feed_language, feed_author, warnings) for item in items]
    title = _plain(_str(document, "title"), "text/plain", TITLE_LIMIT)
    return _parsed(entries, title, feed_language, warnings, "item")


def _json_entry(
    item: Any, url: str, feed_language: str | None, feed_author: str | None, warnings: list[str]
) -> Entry | None:
    """Build one Entry from a JSON Feed item, or None when it holds nothing to show."""
    if not isinstance(item, dict):
        return None
    link = _http_url(_str(item, "url"), url) or _http_url(_str(item, "external_url"), url)
    base = link or url
    summary = _as_html(_str(item, "summary"), "text/plain")
    body = (
        _as_html(_str(item, "content_html"), "text/html")
        or _as_html(_str(item, "content_text"), "text/plain")
        or summary
    )
    raw_id = item.get("id")
    # The spec says string, but some generators write numbers; booleans are no id at all.
    number = isinstance(raw_id, int | float) and not isinstance(raw_id, bool)
    title = _plain(_str(item, "title"), "text/plain", TITLE_LIMIT)
    summary_html, summary_text = _bodies(body, summary or body, base, title, warnings)
    tags = item.get("tags")
    return _finish(
        Entry(
            title=title,
            link=link,
            guid=str(raw_id) if number else _str(item, "id"),
            summary_html=summary_html,
            summary_text=summary_text,
            author=_json_author(item) or feed_author,
            language=_language(_str(item, "language")) or feed_language,
            published_at=_iso_datetime(_str(item, "date_published")),
            updated_at=_iso_datetime(_str(item, "date_modified")),
            image_url=_http_url(_str(item, "image") or _str(item, "banner_image"), base),
            categories=tuple(t for t in tags if isinstance(t, str))
            if isinstance(tags, list)
            else (),
        )
    )


def _own_link(raw: Any, base: str) -> str | None:
    """The entry's own link: an alternate without `hreflang` (feedparser keeps the last
    alternate, which may be a translation's), else feedparser's choice."""
    for link in _list(raw, "links"):
        if _str(link, "rel") in ("", "alternate") and not _str(link, "hreflang"):
            own = _http_url(_str(link, "href"), base)
            if own:
                return own
    return _http_url(_str(raw, "link"), base)


def _bodies(
    body_html: str, teaser_html: str, base: str, title: str, warnings: list[str]
) -> tuple[str, str]:
    """Return the sanitized body (`summary_html`) and the teaser's text (`summary_text`)."""
    summary_html = _tidy(sanitize_html(body_html, base), title)
    # A feed's own summary is the author's teaser; the full content often starts with
    # page furniture (menus, the title again), so the text comes from the summary.
    teaser = (
        summary_html if teaser_html == body_html else _tidy(sanitize_html(teaser_html, base), title)
    )
    if len(summary_html) > MAX_HTML:
        warnings.append(f"{title}: content over {MAX_HTML:,} characters kept as text only")
        summary_html = text_to_html(html_to_text(summary_html, MAX_HTML // 2))
    return summary_html, main_text(teaser, title=title, limit=SUMMARY_LIMIT)


def _finish(entry: Entry) -> Entry | None:
    """Return `entry` with a title, a bounded guid and tidy categories; None if it is empty."""
    if not (entry.title or entry.link or entry.summary_text):
        return None
    guid = entry.guid
    if guid and len(guid) > MAX_GUID:
        guid = "sha256:" + hashlib.sha256(guid.encode("utf-8", "replace")).hexdigest()
    title = entry.title or shorten(entry.summary_text.split("\n")[0], DERIVED_TITLE_LIMIT)
    categories = dict.fromkeys(" ".join(c.split()) for c in entry.categories if c.strip())
    return dataclasses.replace(
        entry,
        title=title or entry.link or "",
        guid=guid,
        categories=tuple(categories)[:MAX_CATEGORIES],
    )


def _parsed(
    candidates: list[Entry | None], title: str, language: str | None, warnings: list[str], noun: str
) -> Parsed:
    """Return the Parsed document, with a warning for each empty entry left out."""
    for number, entry in enumerate(candidates, start=1):
        if entry is None:
            warnings.append(f"{noun} {number} has no title, link or text and was skipped")
    entries = tuple(entry for entry in candidates if entry is not None)
    return Parsed(
        entries=entries, title=title or None, language=language, warnings=_capped(warnings)
    )


def _as_html(value: str | None, content_type: str | None) -> str:
    """Return `value` as HTML, escaping it when its type says it is plain text."""
    if not value or value.isspace():
        return ""
    return value if content_type in _HTML_TYPES or content_type is None else text_to_html(value)


def _tidy(html_text: str, title: str) -> str:
    """Drop a leading Drupal byline and a leading heading that repeats the title."""
    html_text = _BYLINE.sub("", html_text, count=1)
    heading = _LEADING_HEADING.match(html_text)
    if heading and title and html_to_text(heading.group(1), TITLE_LIMIT) == title:
        html_text = html_text[heading.end() :]
    return html_text.strip()


def _plain(value: str | None, content_type: str | None, limit: int) -> str:
    """Return a one-line plain-text title: tags stripped and entities decoded if it is HTML."""
    if not value:
        return ""
    text = html_to_text(value, limit * 2) if content_type in _HTML_TYPES else value
    return shorten(" ".join(text.split()), limit)


def _author(detail: Any) -> str | None:
    """Return a feedparser entry's or feed's author name (falling back to the raw string)."""
    name = _str(_field(detail, "author_detail"), "name") or _str(detail, "author")
    return shorten(" ".join(name.split()), AUTHOR_LIMIT) if name else None


def _json_author(item: dict[str, Any]) -> str | None:
    """Return the names of a JSON Feed object's `authors` (1.1) or `author` (1.0)."""
    authors = item.get("authors")
    candidates = authors if isinstance(authors, list) else [item.get("author")]
    names = [n for a in candidates if isinstance(a, dict) if (n := _str(a, "name"))]
    return shorten(" ".join(", ".join(names).split()), AUTHOR_LIMIT) or None


def _language(value: str | None) -> str | None:
    """Return the lowercase primary subtag of a language tag ("nl-BE" → "nl"), or None."""
    if not value:
        return None
    primary = re.split(r"[-_]", value.strip(), maxsplit=1)[0].lower()
    return primary if _LANGUAGE.fullmatch(primary) else None


def _http_url(value: str | None, base: str) -> str | None:
    """Return `value` made absolute against `base` if it is an http(s) URL, else None."""
    if not value or not value.strip():
        return None
    try:
        absolute = urljoin(base, value.strip())
        parts = urlsplit(absolute)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return None
    if parts.scheme not in {"http", "https"} or not parts.netloc or len(absolute) > MAX_LINK:
        return None
    return absolute


def _utc(value: Any) -> datetime | None:
    """Return feedparser's UTC struct_time as an aware datetime, or None."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (OverflowError, ValueError, OSError):  # year 10000 and friends
        return None


def _iso_datetime(value: str | None) -> datetime | None:
    """Return an RFC 3339 date as aware UTC (a date without offset is taken as UTC), or None."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _misdeclared_charset(body: bytes, content_type: str | None) -> str | None:
    """Return the legacy charset (Latin-1, windows-125x) claimed for bytes that are UTF-8.

    Valid UTF-8 with non-ASCII bytes is almost never legacy text by accident, but feedparser
    trusts the declaration (header first, then `<?xml encoding>`) and would make "é" "Ã©".
    """
    header = _CHARSET_PARAMETER.search(content_type or "")
    declaration = _XML_ENCODING.match(body[:200])
    declared = header[1] if header else declaration[1].decode() if declaration else ""
    declared = declared.strip("\"'").lower()
    if not _LEGACY_CHARSET.fullmatch(declared) or body.isascii():
        return None
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return declared


def _not_a_feed(body: bytes, content_type: str | None, url: str, bozo: object) -> str:
    """Say what the bytes are instead of a feed, and what the operator can do about it."""
    head = body[:4096].lower()
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in {"text/html", "application/xhtml+xml"} or re.search(rb"<html|<!doctype html", head):
        message = (
            f"{url}: this is an HTML page, not a feed; point the source at its feed URL"
            ' or use kind = "page"'
        )
        advertised = _advertised_feed(body, url)
        return message + (f" (the page links to a feed: {advertised})" if advertised else "")
    if type(bozo).__name__ == "SAXParseException":
        return (
            f"{url}: this is not a feed we can read ({_describe_bozo(bozo)}) and no entries"
            " could be recovered; open the URL in a browser, or ask the publisher to fix it"
        )
    start = " ".join(body[:80].decode("utf-8", "replace").split())
    return (
        f"{url}: no RSS, Atom or JSON Feed found (the document starts with {start!r}); "
        "point the source at the feed itself"
    )


def _advertised_feed(body: bytes, url: str) -> str | None:
    """Return the first feed an HTML page advertises with `<link rel="alternate">`, if any."""
    for tag in _LINK_TAG.finditer(body[: 256 * 1024]):
        attributes = {
            name.lower(): b"".join(values) for name, *values in _TAG_ATTRIBUTE.findall(tag[0])
        }
        rel = attributes.get(b"rel", b"").lower().split()
        if b"alternate" in rel and attributes.get(b"type", b"").lower() in _FEED_TYPES:
            href = html.unescape(attributes.get(b"href", b"").decode("utf-8", "replace"))
            if found := _http_url(href, url):
                return found
    return None


def _describe_bozo(exc: object) -> str:
    """Turn feedparser's bozo exception into a sentence for the source's report."""
    kind = type(exc).__name__
    return _BOZO.get(kind, kind + ": {}").format(exc)


def _is_image(media: Any) -> bool:
    """Whether a media:content or enclosure dict says it is an image."""
    return _str(media, "medium") == "image" or (_str(media, "type") or "").startswith("image/")


def _capped(warnings: list[str]) -> tuple[str, ...]:
    """Keep the first MAX_WARNINGS warnings and count the rest, so a report stays readable."""
    if len(warnings) <= MAX_WARNINGS:
        return tuple(warnings)
    return (*warnings[:MAX_WARNINGS], f"… and {len(warnings) - MAX_WARNINGS} more warnings")


# feedparser's FeedParserDict.get() maps aliases and, for `updated`/`updated_parsed`, falls
# back to `published` with a DeprecationWarning (feedparser issue 310; pytest turns it into
# an error). Reading the stored keys with dict.get avoids both and sees what was parsed.
def _field(mapping: Any, key: str) -> Any:
    """Return `mapping[key]` as feedparser stored it, or None."""
    return dict.get(mapping, key) if isinstance(mapping, dict) else None


def _str(mapping: Any, key: str) -> str | None:
    """Return a stripped non-empty string field of a feedparser dict or JSON object, or None."""
    value = _field(mapping, key)
    return value.strip() or None if isinstance(value, str) else None


def _list(mapping: Any, key: str) -> list[Any]:
    """Return a list field of a feedparser dict, or an empty list."""
    value = _field(mapping, key)
    return value if isinstance(value, list) else []
