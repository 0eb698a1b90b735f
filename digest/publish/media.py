"""Copy the images an issue shows into the public folder (`[render] images = "copy"`), so
that mails, archive pages and feed entries load them from the publication's own
`base_url`, never from a third party. Runs at publish time.

Each image is fetched once through the collector's guarded fetcher (size and time bounded,
private addresses refused), kept only when its bytes are a PNG, JPEG, GIF or WebP image
larger than 2×2 px (a tracking pixel never gets a copy), and written as
`media/<hash>.<ext>` (`render.images.media_path`). A copy already there is not fetched
again; an image that cannot be fetched is left out and logged.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Iterable
from pathlib import Path

from digest.collect.fetch import Fetcher, FetchPolicy
from digest.config import Settings
from digest.errors import DigestError
from digest.render.images import copy_plan

log = logging.getLogger(__name__)


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF, JPEG or WebP image; None when it is none of these."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP" and len(data) >= 30:
        if data[12:16] == b"VP8X":
            width = int.from_bytes(data[24:27], "little") + 1
            height = int.from_bytes(data[27:30], "little") + 1
            return width, height
        if data[12:16] == b"VP8 ":
            width, height = struct.unpack("<HH", data[26:30])
            return int(width) & 0x3FFF, int(height) & 0x3FFF
        return None
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    at = 2
    while at + 9 < len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return int(width), int(height)
        at += 2 + length
    return None


def copy_images(settings: Settings, sources: Iterable[str]) -> dict[str, bytes]:
    """Return {public path: bytes} of the images in `sources` not yet copied."""
    output = Path(settings.publish.output_dir)
    wanted = {
        src: path
        for src, path in copy_plan(
            sorted(set(sources)), settings.render.images, settings.publication.base_url
        ).items()
        if not (output / path).exists()
    }
    if not wanted:
        return {}
    return asyncio.run(_fetch_all(settings, wanted))


async def _fetch_all(settings: Settings, wanted: dict[str, str]) -> dict[str, bytes]:
    copied: dict[str, bytes] = {}
    async with Fetcher(FetchPolicy.from_settings(settings.collect)) as fetcher:
        for src, path in wanted.items():
            try:
                fetched = await fetcher.fetch(src)
            except DigestError as exc:
                log.warning("image %s not copied: %s", src, exc)
                continue
            data = fetched.body or b""
            size = image_size(data)
            if size is None or min(size) <= 2:
                log.warning("image %s not copied: not an image we show (%s)", src, size)
                continue
            copied[path] = data
    return copied
