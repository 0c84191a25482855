from __future__ import annotations

import importlib.util
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import text

from openami.errors import ConfigError
from openami.store.sql import make_engine, sqlite_url


def test_sqlite_url_names_the_file(tmp_path: Path) -> None:
    assert sqlite_url(tmp_path / "ops.db") == f"sqlite:///{tmp_path}/ops.db"


def test_a_sqlite_file_uses_wal_and_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "ops.db"
    engine = make_engine(sqlite_url(path))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar_one() == 2  # FULL
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        # WAL mode is stored in the file: a connection without the engine's pragmas sees it.
        with closing(sqlite3.connect(path)) as plain:
            assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert plain.execute("SELECT x FROM t").fetchone() == (1,)
    finally:
        engine.dispose()
    assert path.exists()


@pytest.mark.parametrize("url", ["", "not a url", "nosuchdialect://user@host/db", "://"])
def test_an_unusable_url_raises_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="not usable"):
        make_engine(url)


def test_a_url_whose_driver_is_not_installed_raises_config_error() -> None:
    if importlib.util.find_spec("MySQLdb") is not None:
        pytest.skip("MySQLdb is installed here")
    with pytest.raises(ConfigError):
        make_engine("mysql+mysqldb://user@127.0.0.1/db")
