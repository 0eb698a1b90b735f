"""`digest serve`: the web app (public pages and the editor's desk)."""

from __future__ import annotations
