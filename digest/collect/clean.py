"""Make untrusted text clean (`clean_text`, `clean_title`), untrusted HTML safe to mail
(`sanitize_html`) and readable as plain text (`html_to_text`).

Every string stored from a source or typed by an editor passes `clean_text` once, where it
is stored (`store/items.py`, source names, the desk and the CLI): no NUL or other C0/C1
control character but tab, LF and CR; no lone surrogate or non-character (U+FFFE, U+FFFF,
U+FDD0..U+FDEF, …), which become U+FFFD; Unicode NFC. Titles and names (`clean_title`) also
lose the bidi embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069) that
would reverse what follows them in a subject line or a list.

Every piece of HTML from a source passes through `sanitize_html` before it is stored.
nh3 (ammonia, html5ever) is the one sanitizer we trust; what it emits is well-formed and
holds only the tags, attributes and URL schemes listed here. (feedparser's own sanitizer
keeps forms, `style` and `file:` links, STANDARDS.md "Fetching sources", and is not used.)
"""

from __future__ import annotations

import re
import unicodedata
from html import escape
from html.parser import HTMLParser
from urllib.parse import urlsplit

import nh3

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div",
        "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
        "i", "img", "ins", "li", "mark", "ol", "p", "pre", "q", "s", "small", "strong", "sub",
        "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
    }
)  # fmt: skip
"""Tags a newsletter item may keep; others are dropped and their text kept."""

ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "abbr": {"title"},
    "ol": {"start"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
}
"""No `style`, no `class`, no `on*` handlers: mail clients and our templates do the styling."""

URL_SCHEMES = frozenset({"http", "https", "mailto"})
"""Everything else (javascript:, data:, file:, vbscript:, …) loses its href/src."""

DROPPED_WITH_CONTENT = frozenset(
    {
        "script", "style", "iframe", "object", "embed", "noscript", "template", "button",
        "select", "textarea", "title", "svg", "math", "audio", "video", "canvas",
    }
)  # fmt: skip
"""Tags whose content is code, widgets or fallback text ("your browser does not …"), not prose.

`form` and `input` are not here: a form tag is dropped but its text kept, because some CMSs
wrap a whole article in one."""

_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "figcaption",
        "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
        "main", "nav", "ol", "p", "pre", "section", "table", "tr", "ul",
    }
)  # fmt: skip
_LINES = frozenset({"li", "tr", "dt", "dd"})
"""Blocks that read as one line of a list rather than a paragraph of their own."""

# Scraped pages sometimes lost the start of a tag (`<img alt=` or `<a class=`) and kept the
# rest as text: `"Caption" src=\n"/jahia/….jpg">` or `"mailto:x@y">x@y`. These fragments
# are attribute soup ending in `>`; a `<tag ` right before one means it is deliberate
# escaped markup (an article about HTML) and it is kept. The repetitions are bounded, so
# hostile text (`a="b" ` a million times) costs linear time, not quadratic.
# The possessive `{…}+` and `*+` never give back what they took: the next token cannot
# match it anyway (a name char is no space or `=`), so the matches are the same, found
# without backtracking through every word of the text.
_QUOTED = r'"[^"<>]{0,1000}+"'
_ATTR = rf"[a-zA-Z][\w:-]{{0,30}}+\s*+=\s*+{_QUOTED}"
_FRAGMENT = (
    rf"(?:{_QUOTED}\s+)?(?:{_ATTR}\s*){{1,12}}/?"  # `"Caption" src="/a.jpg"`
    r'|"(?:mailto:|https?:|/)[^"\s<>]{0,1000}+"\s*'  # `"mailto:x@y"`
)
_DANGLING_TEXT = re.compile(rf"(<[a-zA-Z][\w-]*\s+)?(?:{_FRAGMENT})>")
_DANGLING_HTML = re.compile(rf"(&lt;[a-zA-Z][\w-]*\s+)?(?:{_FRAGMENT})&gt;")
_IMAGE = re.compile(r'<img((?: [a-z-]+="[^"]*")*)>')
"""An image as nh3 writes it (values never hold `"`); one whose src was unsafe has none left."""
_EMPTY_PARAGRAPH = re.compile(r"<p>(?:\s|&nbsp;)*</p>")
"""What is left of a paragraph that held only a fragment, an unsafe image or `&nbsp;`."""

_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""C0 and C1 controls (and DEL) except tab, LF and CR: removed."""
_UNUSABLE = re.compile(
    "[\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
    + "".join(f"\\U{plane:04x}fffe\\U{plane:04x}ffff" for plane in range(1, 17))
    + "]"
)
"""Lone surrogates and Unicode non-characters: replaced with U+FFFD."""
_HIGH = re.compile("[\ud800-\U0010ffff]")
"""A character from the first surrogate on: text without one has nothing `_UNUSABLE` finds."""
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
"""Bidi embeddings, overrides and isolates: removed from titles and names."""


def clean_text(text: str) -> str:
    """Return `text` without control characters (but tab, LF, CR), with lone surrogates and
    non-characters replaced by U+FFFD, in Unicode NFC."""
    if not text:
        return text
    text = _CONTROLS.sub("", text)
    if _HIGH.search(text):  # the long class of non-characters is slow to scan for
        text = _UNUSABLE.sub("\ufffd", text)
    return unicodedata.normalize("NFC", text)


def clean_title(text: str) -> str:
    """Return `clean_text(text)` without bidi overrides and isolates: for titles, names,
    locations and subjects, which are shown on one line among other text."""
    return _BIDI.sub("", clean_text(text)) if text else text


def clean_optional(text: str | None, *, title: bool = False) -> str | None:
    """`clean_text` (or `clean_title`) of `text`, None staying None."""
    if text is None:
        return None
    return clean_title(text) if title else clean_text(text)


_DENY_RELATIVE = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    clean_content_tags=DROPPED_WITH_CONTENT,
    attributes=ALLOWED_ATTRIBUTES,
    url_schemes=URL_SCHEMES,
    url_relative="deny",
)
"""The sanitizer for HTML without a usable base: relative URLs are dropped."""

_BLANK_LINES = re.compile(r"\n{3,}")
_CHUNK = 64 * 1024
"""html_to_text reads this many characters at a time and stops once it has enough text."""


def sanitize_html(html: str, base_url: str | None) -> str:
    """Return `html` with only safe tags, attributes and http/https/mailto URLs left.

    Relative `href`/`src` values are resolved against `base_url` (the entry's or the
    document's URL); without a usable base they are removed, since a relative link means
    nothing in an email. Links get `rel="noopener noreferrer"`. `h1` becomes `h2` so an
    item never outranks the digest's own headings.
    """
    if not html or html.isspace():
        return ""
    cleaned = _clean(html, base_url)
    cleaned = cleaned.replace("<h1>", "<h2>").replace("</h1>", "</h2>")
    if "&gt;" in cleaned:  # every fragment ends with one: most bodies need no search
        cleaned = _DANGLING_HTML.sub(_drop_fragment, cleaned)
    if "<img" in cleaned:
        cleaned = _IMAGE.sub(lambda img: img[0] if ' src="' in img[1] else "", cleaned)
    return _EMPTY_PARAGRAPH.sub("", cleaned).strip()


def _clean(html: str, base_url: str | None) -> str:
    """Run nh3 with our allowlists, resolving relative URLs against `base_url` if it is usable."""
    if base_url is not None:
        parts = urlsplit(base_url)
        if parts.scheme in {"http", "https"} and parts.netloc:
            try:
                return nh3.clean(
                    html,
                    tags=ALLOWED_TAGS,
                    clean_content_tags=DROPPED_WITH_CONTENT,
                    attributes=ALLOWED_ATTRIBUTES,
                    url_schemes=URL_SCHEMES,
                    url_relative=("rewrite_with_base", base_url),
                    attribute_filter=_drop_empty_url,
                )
            except ValueError:
                pass  # nh3 cannot parse this base (a space in the host, …): deny instead.
    return _DENY_RELATIVE.clean(html)


def _drop_empty_url(tag: str, name: str, value: str) -> str | None:
    """Drop an empty href/src, which nh3 would resolve to the base URL itself.

    feedparser's relative-URL resolver empties `javascript:` links (`href=""`); resolved,
    they would become links to the page the item came from.
    """
    return None if name in {"href", "src"} and not value.strip() else value


def _drop_fragment(match: re.Match[str]) -> str:
    """Remove a dangling attribute fragment unless it is escaped markup shown on purpose."""
    return match.group(0) if match.group(1) else ""


def html_to_text(html: str, limit: int = 500) -> str:
    """Return the readable text of `html`, at most `limit` characters.

    Block elements become paragraph breaks (a blank line), list items and `<br>` line
    breaks; entities are decoded, whitespace collapsed, scripts, styles and images left
    out. Past `limit` the text is cut at a word boundary and ends with "…".
    """
    parser = _TextParser()
    # Stop reading once there is clearly more text than we keep: a multi-megabyte item
    # then costs no more than a short one.
    for start in range(0, len(html), _CHUNK):
        parser.feed(html[start : start + _CHUNK])
        if parser.length > 2 * limit + _CHUNK:
            break
    parser.close()
    text = "".join(parser.parts)
    if ">" in text:  # every fragment ends with one
        text = _DANGLING_TEXT.sub(_drop_fragment, text)
    text = "\n".join(" ".join(line.split()) for line in text.split("\n"))
    return shorten(_BLANK_LINES.sub("\n\n", text).strip(), limit)


def text_to_html(text: str) -> str:
    """Return plain text as HTML: escaped, blank lines as paragraphs, newlines as `<br>`."""
    paragraphs = (p.strip() for p in re.split(r"\n\s*\n", text))
    return "".join(
        f"<p>{escape(p, quote=False)}</p>".replace("\n", "<br>") for p in paragraphs if p
    )


def shorten(text: str, limit: int) -> str:
    """Return `text`, or its start cut at a word boundary plus "…" so it fits in `limit`."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return "…"[:limit]
    cut = text[: limit - 1]
    space = max(cut.rfind(" "), cut.rfind("\n"))
    # A word longer than two thirds of the room (a URL) is cut mid-word rather than dropped.
    if space > limit // 3:
        cut = cut[:space]
    return cut.rstrip(" \n.,;:–-") + "…"


class _TextParser(HTMLParser):
    """Collects text and paragraph/line breaks from HTML, skipping code and widgets."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self._skipping: list[str] = []
        self._pre = 0
        self._pending = 0
        """Newlines owed before the next text: 1 ends a line, 2 a paragraph."""

    def _boundary(self, tag: str) -> None:
        # Nested blocks (`</li></ul></div>`) make one break, not one per tag.
        self._pending = max(self._pending, 1 if tag in _LINES else 2)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self._skipping.append(tag)
        elif self._skipping:
            return
        elif tag == "br":
            self._pending = min(self._pending + 1, 2)
        elif tag in {"td", "th"}:
            self._text(" ")
        elif tag in _BLOCKS:
            self._boundary(tag)
            self._pre += tag == "pre"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # `<br/>`, `<hr/>`, `<script/>`: a break at most, never the start of a skipped region.
        if tag not in DROPPED_WITH_CONTENT:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if self._skipping:
            if tag in self._skipping:
                del self._skipping[self._skipping.index(tag) :]
        elif tag in _BLOCKS:
            self._boundary(tag)
            if tag == "pre" and self._pre:
                self._pre -= 1

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        if self._pre:
            self._text(data.replace("\r\n", "\n"))
            return
        # Newlines in the source are layout, not breaks: collapse all whitespace to spaces.
        inner = " ".join(data.split())
        if not inner:
            self._text(" ")
            return
        head = " " if data[:1].isspace() else ""
        tail = " " if data[-1:].isspace() else ""
        self._text(f"{head}{inner}{tail}")

    def _text(self, text: str) -> None:
        if self._pending and text.strip():
            if self.parts:
                self.parts.append("\n" * self._pending)
            self._pending = 0
        self.parts.append(text)
        self.length += len(text)
