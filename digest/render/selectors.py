"""Match simple CSS selectors against an lxml document in one pass, as lxml's `CSSSelector`
(cssselect's XPath) would, for the inliner.

premailer evaluates one XPath per rule over the whole document; an issue's stylesheet has
~50 rules and its document ~300 elements (~1,500 for 60 items), so matching is most of
what inlining costs once the stylesheet is parsed. The selectors email templates use are
plain: a tag, classes, an id, and descendant combinators (`.event td`, `#outlook a`). For
those, `Document` indexes the elements by class, tag and id once and walks up from each
candidate, which finds the same elements in the same (document) order as the XPath:

- a tag matches as written (cssselect does not lowercase it; lxml's HTML parser does);
- a class matches a word of `class` split at the characters XPath's `normalize-space`
  counts as blanks (space, tab, CR, LF), case-sensitively;
- an id matches `id` exactly;
- `A B` matches a B that has an ancestor (the root included) matching A.

`compile` returns None for any other selector (attributes, `>`, `+`, `*`, pseudo-classes,
escapes); the caller then uses the XPath.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_NAME = r"-?[_a-zA-Z][_a-zA-Z0-9-]*"
_COMPOUND = re.compile(rf"(?P<tag>[a-z][a-z0-9]*)?(?P<rest>(?:[.#]{_NAME})*)")
_PART = re.compile(rf"([.#])({_NAME})")
_XPATH_BLANKS = re.compile(r"[ \t\r\n]+")


@dataclass(frozen=True)
class _Compound:
    tag: str | None
    classes: frozenset[str]
    id: str | None


@dataclass
class Document:
    """The elements of a document in order, with their parent, classes and id."""

    elements: list[Any]
    parents: list[int]
    tags: list[str]
    classes: list[frozenset[str]]
    ids: list[str | None]
    by_class: dict[str, list[int]]
    by_tag: dict[str, list[int]]
    by_id: dict[str, list[int]]

    @classmethod
    def of(cls, root: Any) -> Document:
        """Index the elements of the tree under `root` (itself included)."""
        document = cls([], [], [], [], [], {}, {}, {})
        position: dict[Any, int] = {}
        for element in root.iter():
            tag = element.tag
            if not isinstance(tag, str):
                continue  # comments, processing instructions: XPath's `*` skips them
            number = len(document.elements)
            position[element] = number
            parent = element.getparent()
            document.elements.append(element)
            document.parents.append(position.get(parent, -1) if parent is not None else -1)
            document.tags.append(tag)
            document.by_tag.setdefault(tag, []).append(number)
            words = frozenset(_XPATH_BLANKS.split(element.get("class", "").strip(" \t\r\n")))
            words -= {""}
            document.classes.append(words)
            for word in words:
                document.by_class.setdefault(word, []).append(number)
            ident = element.get("id")
            document.ids.append(ident)
            if ident is not None:
                document.by_id.setdefault(ident, []).append(number)
        return document

    def _fits(self, number: int, compound: _Compound) -> bool:
        return (
            (compound.tag is None or self.tags[number] == compound.tag)
            and (compound.id is None or self.ids[number] == compound.id)
            and compound.classes <= self.classes[number]
        )

    def _candidates(self, compound: _Compound) -> list[int]:
        if compound.id is not None:
            return self.by_id.get(compound.id, [])
        if compound.classes:
            return min((self.by_class.get(c, []) for c in compound.classes), key=len)
        assert compound.tag is not None
        return self.by_tag.get(compound.tag, [])

    def select(self, chain: tuple[_Compound, ...]) -> list[Any]:
        """The elements matching the descendant chain, in document order."""
        *ancestors, last = chain
        found = []
        for number in self._candidates(last):
            if not self._fits(number, last):
                continue
            # The nearest matching ancestor is always the best choice: its own ancestors
            # include those of any farther one.
            at = number
            for compound in reversed(ancestors):
                at = self.parents[at]
                while at >= 0 and not self._fits(at, compound):
                    at = self.parents[at]
                if at < 0:
                    break
            else:
                found.append(self.elements[number])
        return found


def _compound(text: str) -> _Compound | None:
    match = _COMPOUND.fullmatch(text)
    if match is None or not text:
        return None
    classes = []
    ident = None
    for kind, name in _PART.findall(match["rest"]):
        if kind == ".":
            classes.append(name)
        elif ident is None:
            ident = name
        else:
            return None  # two ids: leave such oddities to the XPath
    return _Compound(match["tag"], frozenset(classes), ident)


def compile(selector: str) -> Callable[[Document], list[Any]] | None:
    """A function finding the elements `selector` matches in a `Document`, or None when
    the selector is not one of the plain kinds (see the module's docstring)."""
    parts = selector.split(" ")
    if not selector or any(not part for part in parts):
        return None
    chain = []
    for part in parts:
        compound = _compound(part)
        if compound is None:
            return None
        chain.append(compound)
    frozen = tuple(chain)
    return lambda document: document.select(frozen)
