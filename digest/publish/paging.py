"""How the archive index is split into pages, so an older page never changes.

Issues are counted oldest first and cut into pages of `PAGE_SIZE`. The newest issues
(the last full page and the one filling up, so between 51 and 100 once there are more
than 100) are on the archive index (`archive/<lang>/index.html`); every older page of
`PAGE_SIZE` issues is `archive/<lang>/page-<n>.html`, page 1 holding the oldest. Adding an
issue changes the index only, until the index rolls over: then one more page appears, and
the page before it gains its "newer issues" link. The search index is cut the same way
(`search.json` for the issues of the index, `search-<n>.json` for each older page).
"""

from __future__ import annotations

from dataclasses import dataclass

from digest import layout

PAGE_SIZE = 50
"""Issues on an older page of the archive (the index holds up to twice as many)."""


@dataclass(frozen=True)
class ArchivePage:
    """One page of the archive: the positions (oldest first) of the issues it lists."""

    page: int
    """1 for the oldest; the index is the last page."""
    start: int
    stop: int
    last: int
    """The number of the last page (the index)."""

    @property
    def is_index(self) -> bool:
        return self.page == self.last

    def path(self, language: str) -> str:
        """This page's layout path in `language`."""
        return page_path(language, self.page, self.last)

    def search_path(self, language: str) -> str:
        """The layout path of this page's part of the search index in `language`."""
        if self.is_index:
            return layout.search_index(language)
        return layout.search_part(language, self.page)

    @property
    def newer(self) -> int | None:
        return self.page + 1 if self.page < self.last else None

    @property
    def older(self) -> int | None:
        return self.page - 1 if self.page > 1 else None


def page_path(language: str, page: int, last: int) -> str:
    """The layout path of archive page `page` of `last` in `language`."""
    return layout.archive_index(language) if page == last else layout.archive_page(language, page)


def archive_pages(count: int, size: int | None = None) -> list[ArchivePage]:
    """The pages listing `count` issues (`size` on an older page, `PAGE_SIZE` unless
    given), the oldest page first and the index last."""
    size = size or PAGE_SIZE
    chunks = -(-count // size)
    older = max(0, chunks - 2)
    last = older + 1
    pages = [ArchivePage(n + 1, n * size, (n + 1) * size, last) for n in range(older)]
    pages.append(ArchivePage(last, older * size, count, last))
    return pages
