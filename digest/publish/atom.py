"""Build the Atom feeds (RFC 4287) of one language: its issues, and every story. Pure.

Two feeds per language: `feeds/<lang>.atom` holds the latest issues (`[publish]
feed_issues`), `feeds/<lang>-items.atom` every story once, as its own entry linking to its
source (`[publish] feed_items`); each links to the other languages' with `hreflang`
alternates. Ids are tag: URIs (RFC 4151) built from the publication's host and the date
it started, so they never change when an issue is rendered again, a later `now` included.
The same issues always give the same bytes, so publishing unchanged data leaves the file
(and its ETag and Last-Modified) alone.

Entry content is web HTML made for feed readers (`render/feed.py`: no preheader, no "view
in browser", no subscriber footer, no inline styles, a closing line linking the archive
page and the sign-up page), as escaped HTML (`type="html"`). It was sanitized when
rendered; scripts, embedded objects, event-handler attributes and `javascript:` URLs are
stripped again here, because feed readers show this HTML inside their own pages and the
W3C Feed Validation Service rejects it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from email.utils import parseaddr
from urllib.parse import urlsplit

import lxml.html
from lxml import etree

from digest import layout
from digest.errors import ConfigError

CONTENT_TYPE = "application/atom+xml; charset=utf-8"
"""The Content-Type to serve the feeds with (RFC 4287 §7)."""

ATOM = "http://www.w3.org/2005/Atom"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"

# Elements feed readers and the W3C validator treat as a security risk inside content.
_DROPPED = frozenset(
    {
        "script",
        "noscript",
        "style",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "meta",
        "link",
        "base",
        "form",
    }
)
_URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "background", "poster"})
# data: URLs can carry a whole HTML page; inline raster images are harmless and common.
_UNSAFE_URL = re.compile(
    r"^(?:javascript:|vbscript:|data:(?!image/(?:png|gif|jpe?g|webp)[;,]))", re.IGNORECASE
)
_DOCUMENT = re.compile(r"^\s*(?:<!--.*?-->\s*)*(?:<!doctype|<html|<head|<body)", re.I | re.S)
# XML 1.0 §2.2: these characters cannot appear in a document at all.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class FeedIssue:
    """One issue as its feed entry shows it, in one language."""

    number: int
    subject: str
    published_at: datetime
    updated_at: datetime
    content_html: str
    """The web version: a full HTML document or a body fragment."""
    url: str
    """The issue's page in the archive."""
    summary: str
    """Plain text."""
    content: str | None = None
    """The entry's content as this feed already holds it (sanitized), used as it is
    instead of `content_html` (`entry_contents`)."""


@dataclass(frozen=True)
class FeedItem:
    """One story as the feed of items shows it: its own entry, linking to its source."""

    key: str
    """The plan item's key ("entry:12", "event:3"): with the language, the entry's id."""
    title: str
    link: str
    """The story at its source (or, when it has none, the issue page)."""
    published_at: datetime
    updated_at: datetime
    content_html: str
    summary: str
    categories: tuple[str, ...] = ()
    """Labels of its topics, in the feed's language."""
    language: str | None = None
    """The story's own language when it is not the feed's."""


def atom_feed(
    issues: Sequence[FeedIssue],
    *,
    language: str,
    languages: Sequence[str],
    title: str,
    base_url: str,
    author: str,
    tag_start: date,
    now: datetime,
    limit: int | None = None,
) -> bytes:
    """Return the Atom feed of `issues` in `language`, newest first, as UTF-8 XML.

    `languages` are all the publication's languages (the others become `hreflang`
    alternates); `author` is "Name" or "Name <address>"; `tag_start` is the date in every
    tag: id and must never change; `now` only dates an empty feed; `limit` keeps the
    latest issues only (`[publish] feed_issues`).
    """
    authority = f"{_host(base_url)},{tag_start.isoformat()}"
    ordered = sorted(issues, key=lambda issue: (issue.published_at, issue.number), reverse=True)
    ordered = ordered[:limit] if limit is not None else ordered
    updated = max((issue.updated_at for issue in ordered), default=now)
    feed = _feed(
        layout.feed,
        f"tag:{authority}:feed/{language}",
        language=language,
        languages=languages,
        title=title,
        base_url=base_url,
        author=author,
        updated=updated,
    )
    for issue in ordered:
        _entry(feed, issue, authority=authority, language=language)
    return _bytes(feed)


def latest_stories(stories: Sequence[FeedItem], limit: int | None) -> list[FeedItem]:
    """The stories the feed of items shows: each key once (the first issue that carried
    it), newest first, the latest `limit` of them."""
    seen: dict[str, FeedItem] = {}
    for story in sorted(stories, key=lambda s: (s.published_at, s.key)):
        seen.setdefault(story.key, story)  # the first issue that carried it
    ordered = sorted(seen.values(), key=lambda s: (s.published_at, s.key), reverse=True)
    return ordered[:limit] if limit is not None else ordered


def atom_items_feed(
    stories: Sequence[FeedItem],
    *,
    language: str,
    languages: Sequence[str],
    title: str,
    base_url: str,
    author: str,
    tag_start: date,
    now: datetime,
    limit: int | None = None,
) -> bytes:
    """Return the Atom feed of every story in `language` (each once, newest first), as
    UTF-8 XML; the arguments are those of `atom_feed`."""
    authority = f"{_host(base_url)},{tag_start.isoformat()}"
    ordered = latest_stories(stories, limit)
    updated = max((story.updated_at for story in ordered), default=now)
    feed = _feed(
        layout.items_feed,
        f"tag:{authority}:items/{language}",
        language=language,
        languages=languages,
        title=title,
        base_url=base_url,
        author=author,
        updated=updated,
    )
    for story in ordered:
        entry = etree.SubElement(feed, f"{{{ATOM}}}entry")
        if story.language and story.language != language:
            entry.set(_XML_LANG, story.language)
        _sub(entry, "id", f"tag:{authority}:item/{story.key}/{language}")
        _sub(entry, "title", story.title)
        _sub(entry, "updated", _date(story.updated_at))
        _sub(entry, "published", _date(story.published_at))
        _link(entry, "alternate", story.link, "text/html")
        for category in story.categories:
            etree.SubElement(entry, f"{{{ATOM}}}category").set("term", category)
        if story.summary.strip():
            _sub(entry, "summary", story.summary.strip())
        content = _sub(entry, "content", body_fragment(story.content_html))
        content.set("type", "html")
        content.set(_XML_BASE, story.link)
    return _bytes(feed)


def _feed(
    path: Callable[[str], str],
    feed_id: str,
    *,
    language: str,
    languages: Sequence[str],
    title: str,
    base_url: str,
    author: str,
    updated: datetime,
) -> etree._Element:
    """Return a feed element with its head: id, title, dates, self and alternate links."""
    # lxml-stubs type nsmap keys as str, but None is how lxml spells the default namespace.
    feed = etree.Element(f"{{{ATOM}}}feed", nsmap={None: ATOM})  # type: ignore[dict-item]
    feed.set(_XML_LANG, language)
    _sub(feed, "id", feed_id)
    _sub(feed, "title", title)
    _sub(feed, "updated", _date(updated))
    _link(feed, "self", layout.url(base_url, path(language)), "application/atom+xml")
    archive = layout.url(base_url, layout.archive_index(language))
    _link(feed, "alternate", archive, "text/html", language)
    for other in dict.fromkeys(languages):
        if other != language:
            href = layout.url(base_url, path(other))
            _link(feed, "alternate", href, "application/atom+xml", other)
    _author(feed, author)
    return feed


def _bytes(feed: etree._Element) -> bytes:
    etree.indent(feed, space="  ")
    return etree.tostring(feed, xml_declaration=True, encoding="utf-8") + b"\n"


def _entry(feed: etree._Element, issue: FeedIssue, *, authority: str, language: str) -> None:
    """Append the entry of one issue."""
    entry = etree.SubElement(feed, f"{{{ATOM}}}entry")
    _sub(entry, "id", f"tag:{authority}:issue/{issue.number}/{language}")  # issue_entry_id
    _sub(entry, "title", issue.subject)
    _sub(entry, "updated", _date(issue.updated_at))
    _sub(entry, "published", _date(issue.published_at))
    _link(entry, "alternate", issue.url, "text/html", language)
    if issue.summary.strip():
        _sub(entry, "summary", issue.summary.strip())
    text = issue.content if issue.content is not None else body_fragment(issue.content_html)
    content = _sub(entry, "content", text)
    content.set("type", "html")
    # Relative links in the page resolve against the page, not against the feed.
    content.set(_XML_BASE, issue.url)


def issue_entry_id(base_url: str, tag_start: date, number: int, language: str) -> str:
    """The id of issue `number`'s entry in the feed of `language`."""
    return f"tag:{_host(base_url)},{tag_start.isoformat()}:issue/{number}/{language}"


def entry_contents(feed: bytes) -> dict[str, str]:
    """Entry id → its content, of a feed this module wrote (empty when unreadable): what
    an unchanged entry holds, without rendering and sanitizing it again."""
    try:
        root = etree.fromstring(feed, parser=etree.XMLParser(resolve_entities=False))
    except etree.XMLSyntaxError:
        return {}
    contents = {}
    for entry in root.iterfind(f"{{{ATOM}}}entry"):
        entry_id, content = entry.findtext(f"{{{ATOM}}}id"), entry.find(f"{{{ATOM}}}content")
        if entry_id and content is not None:
            contents[entry_id] = content.text or ""
    return contents


def body_fragment(document: str) -> str:
    """Return the inner HTML of `document`'s body (or of a fragment), minus active content.

    Drops scripts, styles, frames, embedded objects, forms and comments (conditional
    comments can hold markup), `on*` attributes and `javascript:`, `vbscript:` and `data:`
    URLs (but `data:` raster images).
    """
    if not document.strip():
        return ""
    if _DOCUMENT.match(document):
        try:
            root = lxml.html.document_fromstring(document)
        except etree.ParserError:  # "Document is empty": a doctype and nothing else
            return ""
        body = root.find("body")
        if body is None:
            return ""
    else:
        body = lxml.html.fragment_fromstring(document, create_parent="div")
    for element in list(body.iter()):
        if element is body:
            continue
        if not isinstance(element.tag, str) or element.tag.lower() in _DROPPED:
            element.drop_tree()  # keeps the tail text
            continue
        for name, value in list(element.attrib.items()):
            local = name.lower().rpartition("}")[2].rpartition(":")[2]  # xlink:href → href
            unsafe_url = local in _URL_ATTRIBUTES and _UNSAFE_URL.match(_squeeze(value))
            if local.startswith("on") or unsafe_url:
                del element.attrib[name]
    parts = [html.escape(body.text or "", quote=False)]
    parts += [lxml.html.tostring(child, encoding="unicode") for child in body]
    return "".join(parts).strip()


def _squeeze(url: str) -> str:
    """Return a URL without the whitespace and controls browsers ignore in a scheme."""
    return re.sub(r"[\x00-\x20]+", "", url)


def _host(base_url: str) -> str:
    """Return the host of the publication's base URL, lowercased, for tag: ids."""
    host = urlsplit(base_url).hostname
    if not host:
        raise ConfigError(
            f"[publication] base_url {base_url!r} has no host name; "
            "set it to the public address, like https://digest.example.org"
        )
    return host


def _author(feed: etree._Element, author: str) -> None:
    """Append the feed's author: a name, and an address if `author` carries one."""
    name, address = parseaddr(author)
    element = etree.SubElement(feed, f"{{{ATOM}}}author")
    _sub(element, "name", name or author)
    if "@" in address:
        _sub(element, "email", address)


def _link(
    parent: etree._Element, rel: str, href: str, media_type: str, hreflang: str | None = None
) -> None:
    """Append an atom:link."""
    link = etree.SubElement(parent, f"{{{ATOM}}}link")
    link.set("rel", rel)
    link.set("type", media_type)
    if hreflang:
        link.set("hreflang", hreflang)
    link.set("href", href)


def _sub(parent: etree._Element, name: str, text: str) -> etree._Element:
    """Append an Atom element holding `text` (minus characters XML cannot carry)."""
    element = etree.SubElement(parent, f"{{{ATOM}}}{name}")
    element.text = _NOT_XML.sub("", text)
    return element


def _date(moment: datetime) -> str:
    """Return an RFC 3339 date-time with its offset ("Z" for UTC), to the second."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"feed dates must be aware datetimes, got naive {moment.isoformat()}")
    text = moment.isoformat(timespec="seconds")
    if text.endswith("+00:00"):
        return text.removesuffix("+00:00") + "Z"
    return text
