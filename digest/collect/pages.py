"""Feedless web pages: find the items a page lists, or track the page itself as one entry.

A page is read in this order, stopping at the first that yields something:
1. two or more `<article>` elements: one entry each (title from its heading, link from
   the heading's or the first link, date from `<time datetime>`);
2. two or more headings (h2/h3) that link somewhere: one entry each, the text up to the
   next heading as its summary (news listings of CMSs without a feed look like this);
3. the page as a whole: one entry whose guid is the URL, so an edit shows as a change.

Navigation, headers, footers, forms, cookie banners and the like are removed first
(scraped pages are full of them). Pure: bytes in, `Parsed` out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urljoin

import lxml.html
from lxml import etree

from digest.collect import Entry, Parsed
from digest.collect.clean import html_to_text, sanitize_html
from digest.collect.extract import main_text
from digest.errors import ParseError

_BOILERPLATE_TAGS = (
    "script",
    "style",
    "noscript",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "template",
    "svg",
    "iframe",
    "button",
    "select",
    "input",
)
_BOILERPLATE_WORDS = re.compile(
    r"(^|[-_ ])(nav|navbar|menu|breadcrumbs?|footer|header|sidebar|cookie|consent|share|"
    r"social|skip|pager|pagination|banner|newsletter-signup)($|[-_ ])",
    re.IGNORECASE,
)
_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_-]+)""", re.IGNORECASE)
_MIN_ITEMS = 2


def _decode(body: bytes, content_type: str | None) -> str:
    """Decode with the header's charset, else the page's meta charset, else UTF-8."""
    candidates: list[str] = []
    if content_type and "charset=" in content_type.lower():
        candidates.append(content_type.lower().split("charset=")[1].split(";")[0].strip(" \"'"))
    meta = _CHARSET.search(body[:4096])
    if meta:
        candidates.append(meta.group(1).decode("ascii", "replace"))
    for charset in [*candidates, "utf-8"]:
        try:
            return body.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("windows-1252", errors="replace")


def _strip_boilerplate(root: lxml.html.HtmlElement) -> None:
    for element in list(root.iter(*_BOILERPLATE_TAGS)):
        element.drop_tree()
    for element in list(root.iter()):
        if not isinstance(element.tag, str) or element.getparent() is None:
            continue
        marks = " ".join([element.get("class", ""), element.get("id", ""), element.get("role", "")])
        if element.tag not in ("body", "main", "article") and _BOILERPLATE_WORDS.search(marks):
            element.drop_tree()


def _text(element: lxml.html.HtmlElement) -> str:
    return " ".join(element.text_content().split())


def _date(element: lxml.html.HtmlElement) -> datetime | None:
    for node in element.iter("time"):
        value = node.get("datetime") or ""
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            continue
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    return None


def _link(element: lxml.html.HtmlElement, base: str) -> str | None:
    for anchor in element.iter("a"):
        href = str(anchor.get("href") or "").strip()
        if href and not href.startswith("#"):
            absolute: str = urljoin(base, href)
            if absolute.startswith(("http://", "https://")):
                return absolute
    return None


def _html(elements: list[lxml.html.HtmlElement], base: str) -> str:
    raw = "".join(etree.tostring(e, encoding="unicode", method="html") for e in elements)
    return sanitize_html(raw, base)


def _entry(
    title: str,
    link: str | None,
    body_html: str,
    language: str | None,
    published: datetime | None,
    guid: str | None = None,
) -> Entry:
    return Entry(
        title=title,
        link=link,
        guid=guid or link,
        summary_html=body_html,
        summary_text=main_text(body_html, title=title),
        language=language,
        published_at=published,
    )


def _from_articles(root: lxml.html.HtmlElement, base: str, lang: str | None) -> Iterator[Entry]:
    articles = list(root.iter("article"))
    if len(articles) < _MIN_ITEMS:
        return
    for article in articles:
        heading = next(article.iter("h1", "h2", "h3", "h4"), None)
        title = _text(heading) if heading is not None else ""
        link = _link(heading, base) if heading is not None else None
        link = link or _link(article, base)
        if heading is not None:
            heading.drop_tree()
        if title or link:
            yield _entry(title or link or "", link, _html([article], base), lang, _date(article))


def _from_headings(root: lxml.html.HtmlElement, base: str, lang: str | None) -> Iterator[Entry]:
    headings = [h for h in root.iter("h2", "h3") if _link(h, base)]
    if len(headings) < _MIN_ITEMS:
        return
    for heading in headings:
        following: list[lxml.html.HtmlElement] = []
        for sibling in heading.itersiblings():
            if not isinstance(sibling.tag, str) or sibling.tag in ("h1", "h2", "h3"):
                break
            following.append(sibling)
        yield _entry(
            _text(heading),
            _link(heading, base),
            _html(following, base),
            lang,
            _date(heading.getparent() if heading.getparent() is not None else heading),
        )


def _whole_page(root: lxml.html.HtmlElement, base: str, lang: str | None) -> Entry | None:
    meta_title = root.xpath("string(//meta[@property='og:title']/@content)")
    title_tag = root.find(".//title")
    h1 = next(root.iter("h1"), None)
    title = " ".join(str(meta_title).split()) or (
        _text(h1) if h1 is not None else (_text(title_tag) if title_tag is not None else "")
    )
    main = next(root.iter("main"), None)
    if main is None:
        main = next(root.iter("article"), None)
    if main is None:
        main = root.find("body")
    if main is None:
        return None
    if title_tag is not None:
        title_tag.drop_tree()
    body_html = _html([main], base)
    text = html_to_text(body_html)
    if not text and not title:
        return None
    published = None
    meta_date = str(root.xpath("string(//meta[@property='article:published_time']/@content)"))
    try:
        published = datetime.fromisoformat(meta_date.replace("Z", "+00:00")) if meta_date else None
    except ValueError:
        published = None
    if published is not None:
        published = (published if published.tzinfo else published.replace(tzinfo=UTC)).astimezone(
            UTC
        )
    # A local file (an operator's saved page) has no public address to link to.
    link = base if base.startswith(("http://", "https://")) else None
    whole = _entry(title or text[:80], link, body_html, lang, published, guid=base)
    return replace(whole, single_document=True, alternates=_alternates(root, base, link))


def _alternates(root: lxml.html.HtmlElement, base: str, link: str | None) -> tuple[str, ...]:
    """The page's `hreflang` alternates and canonical link (other than the page itself)."""
    found = []
    for element in root.iter("link"):
        rel = str(element.get("rel") or "").lower().split()
        href = str(element.get("href") or "").strip()
        if href and ("canonical" in rel or ("alternate" in rel and element.get("hreflang"))):
            absolute = urljoin(base, href)
            if absolute.startswith(("http://", "https://")) and absolute != link:
                found.append(absolute)
    return tuple(dict.fromkeys(found))


def parse_page(body: bytes, *, content_type: str | None, url: str) -> Parsed:
    """Return the entries a web page lists, or the page itself as one entry."""
    text = _decode(body, content_type).strip()
    if not text:
        raise ParseError(f"{url}: the page is empty; check the source's url")
    try:
        root = lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(f"{url}: not an HTML page we can read ({exc})") from exc
    base_element = root.find(".//base")
    base = urljoin(url, base_element.get("href", "")) if base_element is not None else url
    lang_attr = (root.get("lang") or "").strip().lower()
    language = lang_attr.split("-")[0] or None
    title_tag = root.find(".//title")
    page_title = _text(title_tag) if title_tag is not None else None
    _strip_boilerplate(root)
    entries = list(_from_articles(root, base, language)) or list(
        _from_headings(root, base, language)
    )
    if not entries:
        whole = _whole_page(root, base, language)
        entries = [whole] if whole else []
    if not entries:
        raise ParseError(f"{url}: found no content on the page; check the source's url")
    return Parsed(entries=tuple(entries), title=page_title, language=language)
