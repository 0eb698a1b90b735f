"""`digest send` and `digest bounces`: delivering an issue and reading what came back."""

from __future__ import annotations
