"""migplan: declarative, YAML-driven migration planning for Alembic projects."""

from __future__ import annotations

__version__ = "0.1.0"
