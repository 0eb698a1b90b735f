"""`digest schedule` and `digest status`: running the publication unattended."""

from __future__ import annotations
