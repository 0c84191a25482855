"""The SQL helpers the registry stands on (openami.store.sql): aware UTC timestamps, the
schema version table, bulk loading and staging tables, transactions. On SQLite and
PostgreSQL alike."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    inspect,
    select,
)
from sqlalchemy.exc import StatementError

from openami.errors import LocalProtocolError, StoreError
from openami.store.sql import (
    UtcDateTime,
    ensure_schema,
    load_rows,
    make_engine,
    read_transaction,
    staging_table,
    write_transaction,
)
from tests.mdm.registry_support import BACKENDS, database_url

JST = timezone(timedelta(hours=9))
T0 = datetime(2026, 4, 1, tzinfo=UTC)

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(32)),
    Column("blob", LargeBinary),
    Column("at", UtcDateTime),
)


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with database_url(request.param, tmp_path) as url:
        made = make_engine(url)
        metadata.create_all(made)
        yield made
        made.dispose()


def test_times_go_in_aware_and_come_out_utc(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(things.insert(), [{"id": 1, "at": T0.astimezone(JST)}])
    with engine.connect() as conn:
        at = conn.execute(select(things.c.at)).scalar_one()
    assert at == T0 and at.tzinfo is UTC


def test_naive_times_are_refused(engine: Engine) -> None:
    naive = datetime(2026, 4, 1)  # noqa: DTZ001 (the point of the test)
    with pytest.raises(StatementError, match="naive") as caught, engine.begin() as conn:
        conn.execute(things.insert(), [{"id": 1, "at": naive}])
    assert isinstance(caught.value.orig, LocalProtocolError)
    with pytest.raises(LocalProtocolError, match="naive"), engine.begin() as conn:
        load_rows(conn, things, ["id", "at"], [(1, naive)])


def test_bulk_loaded_rows_match_rows_inserted_one_by_one(engine: Engine) -> None:
    rows = [(i, f"n{i}", i.to_bytes(2, "big"), T0 + timedelta(hours=i)) for i in range(1, 1001)]
    with engine.begin() as conn:
        # columns in another order than the table's
        assert (
            load_rows(
                conn, things, ["at", "id", "blob", "name"], [(r[3], r[0], r[2], r[1]) for r in rows]
            )
            == 1000
        )
        conn.execute(things.insert(), [{"id": 0, "name": "n0", "blob": b"\0", "at": T0}])
    with engine.connect() as conn:
        # a bound time finds a bulk-loaded one: both were stored in the same form
        hit = conn.execute(select(things.c.id).where(things.c.at == T0 + timedelta(hours=5)))
        assert hit.scalars().all() == [5]
        back = conn.execute(select(things).order_by(things.c.id)).all()
    assert [(r.id, r.name, bytes(r.blob), r.at) for r in back[1:]] == rows
    assert back[0].at == T0


def test_a_staging_table_is_private_and_dropped(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        with staging_table(conn, "stage_things", list(things.columns)) as stage:
            load_rows(conn, stage, ["id"], [(1,), (2,)])
            assert conn.execute(select(stage.c.id).order_by(stage.c.id)).scalars().all() == [1, 2]
        # dropped: the same name can be made again in the same transaction
        with staging_table(conn, "stage_things", list(things.columns)):
            pass
    assert "stage_things" not in inspect(engine).get_table_names()


def test_a_failed_transaction_takes_its_staging_table_away(engine: Engine) -> None:
    with (
        pytest.raises(StoreError, match="boom"),
        write_transaction(engine) as conn,
        staging_table(conn, "stage_things", list(things.columns)),
    ):
        raise StoreError("boom")
    for _ in range(2):  # and a pooled connection can make it again
        with read_transaction(engine) as conn, staging_table(conn, "stage_things", [things.c.id]):
            pass


def test_the_schema_version_is_kept_per_component(engine: Engine) -> None:
    other = MetaData()
    Table("other_things", other, Column("id", Integer, primary_key=True))
    ensure_schema(engine, metadata, "things", 1)
    ensure_schema(engine, other, "other", 3)
    ensure_schema(engine, metadata, "things", 1)
    with pytest.raises(StoreError, match="the other schema in this database is version 3"):
        ensure_schema(engine, other, "other", 4)
    assert "other_things" in inspect(engine).get_table_names()


def test_a_sqlite_write_transaction_holds_the_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "lock.db"
    engine = make_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    try:
        with write_transaction(engine) as conn:
            conn.execute(select(things.c.id)).all()  # only a read so far, and yet:
            with (
                closing(sqlite3.connect(path, timeout=0.05)) as other,
                pytest.raises(sqlite3.OperationalError, match="locked"),
            ):
                other.execute("INSERT INTO things (id) VALUES (9)")
    finally:
        engine.dispose()


def test_sqlite_enforces_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fk.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    finally:
        engine.dispose()
