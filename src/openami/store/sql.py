"""Operational SQL through SQLAlchemy Core: SQLite by default, PostgreSQL in production."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from openami.errors import ConfigError

__all__ = ["make_engine", "sqlite_url"]


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL and full fsync so acknowledged rows survive."""
    try:
        engine = create_engine(url, future=True)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigError(f"database URL {url!r} is not usable: {exc}") from None
    except ImportError as exc:
        raise ConfigError(
            f"database URL {url!r} needs a driver that is not installed: {exc.name}"
        ) from None
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

    return engine
