"""Excerpts: the first words of an item's text, cut where a reader expects a cut. Pure.

The text is the item's `summary_text`: its main content as plain prose (headings, lists,
tables and media already left out by `collect/extract.py`). An excerpt is one paragraph
of at most `words` words: cut after the last full sentence that ends in the second half
of the allowance, else after the last whole word, with "…".
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)]*$")
ELLIPSIS = "…"


def excerpt(text: str, words: int) -> str:
    """Return at most `words` words of `text` as one paragraph, cut at a sentence end
    (when one falls in the second half) or a word boundary (then ending with "…")."""
    tokens = text.split()
    if not tokens or words <= 0:
        return ""
    if len(tokens) <= words:
        return " ".join(tokens)
    kept = tokens[:words]
    for end in range(len(kept), words // 2, -1):
        if _SENTENCE_END.search(kept[end - 1]) and not kept[end - 1].endswith(ELLIPSIS):
            return " ".join(kept[:end])
    return " ".join(kept).rstrip(",;:–—-(") + ELLIPSIS
