"""The archive's search index and its matching rules (shared by the server and search.js)."""

from __future__ import annotations

from digest.publish.search import IndexedItem, fold, index_bytes, read_index, search, shorten

ITEMS = [
    IndexedItem("École et intégration", "https://a.example/1", "https://d/1.html", 3, "d", ""),
    IndexedItem("URBACT Networks", "https://a.example/2", "https://d/2.html", 2, "d", "cities"),
    IndexedItem("Housing", "https://a.example/3", "https://d/2.html", 2, "d", "URBACT housing"),
]


def test_matching_ignores_case_and_accents_and_needs_every_word() -> None:
    assert fold("École Ĳssel") == "ecole ijssel"
    assert [i.title for i in search(ITEMS, "ecole")] == ["École et intégration"]
    assert [i.title for i in search(ITEMS, "urbact")] == ["URBACT Networks", "Housing"]
    assert [i.title for i in search(ITEMS, "urbact HOUSING")] == ["Housing"]
    assert search(ITEMS, "   ") == []
    assert len(search(ITEMS, "a", limit=1)) == 1


def test_the_index_round_trips_and_skips_foreign_records() -> None:
    data = index_bytes(ITEMS)
    assert read_index(data) == ITEMS
    assert "École" in data.decode("utf-8")  # UTF-8, not \\u escapes
    assert read_index(b'[{"title": "x"}, 3]') == []
    assert read_index(b"not json") == []


def test_summaries_are_cut_at_a_word() -> None:
    assert shorten("one  two\nthree", 100) == "one two three"
    cut = shorten("word " * 100, 30)
    assert len(cut) <= 30 and cut.endswith("…") and not cut.endswith(" …")
