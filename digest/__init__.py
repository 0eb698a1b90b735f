"""digest: a self-hosted multilingual newsletter and event digest publisher."""

__version__ = "0.1.0"
