"""Images: only what we mean reaches the reader, and nothing loads from a third party
unless the operator allows it (`[render] images`). Pure: HTML and URLs in, HTML out.

Policies:

- "drop" (default): no image from a source is shown; a mail, archive page or feed entry
  opens without a single request elsewhere;
- "copy": images are served from the publication's own `base_url` (`media/<hash>.<ext>`,
  copied into `[publish] output_dir` at publish time, see `copy_plan` for what to copy);
- "remote": images load from their source (the operator accepts third-party requests).

Whatever the policy, tracking images go: 1×1 (or 2×2) pixels, images with width or height
0, and addresses that say they count (`pixel`, `beacon`, `track`, `open.gif`, …). Kept
images get `width` and `height` attributes, capped at the email's column (Outlook ignores
`max-width`). A link whose `href` was removed (an unsafe scheme) is unwrapped, so its text
no longer looks like a link.

Any channel applies it to sanitized HTML with `apply_policy(html, policy, base_url)`, and
to a plan item's lead image with `lead_image(item, policy, base_url)`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from digest.compose import PlanItem

COLUMN_WIDTH = 552
"""The email's content column (600 px minus 2 × 24 px padding)."""
POLICIES = ("drop", "copy", "remote")
MEDIA_FOLDER = "media"

_IMG = re.compile(r"<img\b([^>]*)>", re.IGNORECASE)
_ATTR = re.compile(r'([a-zA-Z-]+)="([^"]*)"')
_EMPTY_LINK = re.compile(r"<a\b(?![^>]*\bhref=)[^>]*>(.*?)</a>", re.IGNORECASE | re.DOTALL)
_TRACKING = re.compile(
    r"(?:^|[/._?&=-])(?:pixel|beacon|tracking|tracker|track|spacer|1x1)(?:$|[/._?&=-])"
    r"|/open\.(?:gif|png)|/wf/open",
    re.IGNORECASE,
)
_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif"})


@dataclass(frozen=True)
class Image:
    """An image as templates place it."""

    src: str
    width: int
    height: int | None


def is_tracking(src: str, width: int | None = None, height: int | None = None) -> bool:
    """Whether an image is there to count opens rather than to be seen."""
    if width is not None and width <= 2:
        return True
    if height is not None and height <= 2:
        return True
    path = urlsplit(src)
    return bool(_TRACKING.search(path.path) or _TRACKING.search(path.query))


def media_path(src: str) -> str:
    """Where a copied image lives under the public folder: `media/<sha256[:20]>.<ext>`."""
    suffix = "." + urlsplit(src).path.rsplit(".", 1)[-1].lower() if "." in src else ""
    if suffix not in _EXTENSIONS:
        suffix = ".img"
    return f"{MEDIA_FOLDER}/{hashlib.sha256(src.encode()).hexdigest()[:20]}{suffix}"


def _own(src: str, base_url: str) -> bool:
    return src.startswith(base_url.rstrip("/") + "/")


def served_from(src: str, policy: str, base_url: str) -> str | None:
    """The address an image is shown from under `policy`, or None when it is not shown."""
    if not src.startswith(("http://", "https://")) or is_tracking(src):
        return None
    if _own(src, base_url) or policy == "remote":
        return src
    if policy == "copy":
        return f"{base_url.rstrip('/')}/{media_path(src)}"
    return None


def _size(width: int | None, height: int | None) -> tuple[int, int | None]:
    """Width and height capped at the column, keeping the ratio when both are known."""
    if width is None or width > COLUMN_WIDTH:
        if width and height:
            return COLUMN_WIDTH, max(1, round(height * COLUMN_WIDTH / width))
        return COLUMN_WIDTH, None
    return width, height


def lead_image(item: PlanItem, policy: str, base_url: str) -> Image | None:
    """The one image `item` may show as the policy allows it, or None: its feed's image,
    else the first image of its body that is no tracker; sized for the column, with the
    height when the source gave the image's dimensions."""
    bodies = [dict(_ATTR.findall(m.group(1))) for m in _IMG.finditer(item.summary_html)]
    found = None
    if item.image_url:
        found = next((a for a in bodies if a.get("src") == item.image_url), {})
        found = {**found, "src": item.image_url}
    else:
        found = next(
            (
                a
                for a in bodies
                if a.get("src")
                and not is_tracking(a["src"], _number(a.get("width")), _number(a.get("height")))
            ),
            None,
        )
    if not found:
        return None
    width, height = _number(found.get("width")), _number(found.get("height"))
    if is_tracking(found["src"], width, height):
        return None
    src = served_from(found["src"], policy, base_url)
    if src is None:
        return None
    shown_width, shown_height = _size(width, height)
    if width and height and width < COLUMN_WIDTH:
        shown_width, shown_height = width, height
    return Image(src=src, width=shown_width, height=shown_height)


def _number(value: str | None) -> int | None:
    if value is None:
        return None
    digits = re.match(r"\s*(\d{1,5})", value)
    return int(digits.group(1)) if digits else None


def apply_policy(html: str, policy: str, base_url: str) -> str:
    """Return sanitized `html` with its images as `policy` allows (tracking images always
    dropped, kept ones sized for the column) and links without `href` unwrapped."""

    def image(match: re.Match[str]) -> str:
        attrs = dict(_ATTR.findall(match.group(1)))
        src = attrs.get("src", "")
        width, height = _number(attrs.get("width")), _number(attrs.get("height"))
        if not src or is_tracking(src, width, height):
            return ""
        shown = served_from(src, policy, base_url)
        if shown is None:
            return ""
        width, height = _size(width, height)
        alt = attrs.get("alt", "")
        sized = f' width="{width}"' + (f' height="{height}"' if height else "")
        return f'<img src="{shown}" alt="{alt}"{sized}>'

    return _EMPTY_LINK.sub(r"\1", _IMG.sub(image, html))


def image_sources(html: str) -> list[str]:
    """The `src` of every image in `html` that is no tracker (what "copy" must fetch)."""
    found = []
    for match in _IMG.finditer(html):
        attrs = dict(_ATTR.findall(match.group(1)))
        src = attrs.get("src", "")
        if src and not is_tracking(src, _number(attrs.get("width")), _number(attrs.get("height"))):
            found.append(src)
    return found


def copy_plan(sources: list[str], policy: str, base_url: str) -> dict[str, str]:
    """The images publish must copy under `policy`: {source URL: path under the public
    folder}. Empty unless the policy is "copy"."""
    if policy != "copy":
        return {}
    return {
        src: media_path(src)
        for src in sources
        if src.startswith(("http://", "https://"))
        and not is_tracking(src)
        and not _own(src, base_url)
    }
