"""Build step the declarative pyproject.toml cannot say: compile the gettext catalogues.

Each `digest/render/locale/<lang>/LC_MESSAGES/digest.po` becomes a `digest.mo` beside it in
the wheel, so an installed digest loads compiled catalogues (`digest.render.i18n` compiles
the `.po` in memory only in a source checkout, where no `.mo` is kept).
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithCatalogues(build_py):
    """`build_py`, then every `.po` under the built package compiled to `.mo`."""

    def run(self) -> None:
        super().run()
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for po in sorted(Path(self.build_lib, "digest", "render", "locale").glob("*/*/*.po")):
            with po.open("rb") as source:
                catalog = read_po(source, locale=po.parent.parent.name, domain=po.stem)
            with po.with_suffix(".mo").open("wb") as target:
                write_mo(target, catalog, use_fuzzy=False)


setup(cmdclass={"build_py": BuildWithCatalogues})
