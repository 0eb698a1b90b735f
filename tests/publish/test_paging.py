"""The archive's pages: older pages of a fixed size that never move, the index the rest."""

from __future__ import annotations

from digest.publish.paging import archive_pages


def _spans(count: int) -> list[tuple[int, int, int]]:
    return [(page.page, page.start, page.stop) for page in archive_pages(count, size=50)]


def test_up_to_two_pages_of_issues_are_all_on_the_index() -> None:
    assert _spans(0) == [(1, 0, 0)]
    assert _spans(1) == [(1, 0, 1)]
    assert _spans(100) == [(1, 0, 100)]


def test_older_issues_go_to_pages_that_keep_their_place() -> None:
    assert _spans(101) == [(1, 0, 50), (2, 50, 101)]
    assert _spans(150) == [(1, 0, 50), (2, 50, 150)]
    assert _spans(151) == [(1, 0, 50), (2, 50, 100), (3, 100, 151)]
    pages = archive_pages(151, size=50)
    assert [page.is_index for page in pages] == [False, False, True]
    assert [(page.older, page.newer) for page in pages] == [(None, 2), (1, 3), (2, None)]
    assert [page.path("fr") for page in pages] == [
        "archive/fr/page-1.html",
        "archive/fr/page-2.html",
        "archive/fr/index.html",
    ]
    assert pages[0].search_path("fr") == "archive/fr/search-1.json"
    assert pages[-1].search_path("fr") == "archive/fr/search.json"


def test_the_index_lists_between_one_and_two_pages_of_issues() -> None:
    for count in range(101, 1000, 7):
        index = archive_pages(count, size=50)[-1]
        assert 51 <= index.stop - index.start <= 100
