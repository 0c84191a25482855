"""Operational SQL through SQLAlchemy Core: SQLite by default, PostgreSQL in production.

Besides the engine factory, the helpers every SQL store shares, so that the stores behave
the same on both backends:

- ``UtcDateTime``: timestamps go in aware and come out aware, in UTC, everywhere;
- ``ensure_schema``: migrations-free ``create_all`` guarded by a schema version table, so a
  database written by another layout is refused with a clear message instead of misread;
- ``write_transaction``: a transaction that holds the write lock from its first statement on
  SQLite (so rules checked by reading still hold when the write lands), and
  ``read_transaction``, one snapshot for several reads;
- ``staging_table`` and ``load_rows``: bulk loading at the backend's own speed (``COPY`` on
  PostgreSQL, DB-API ``executemany`` on SQLite), for set-based registration of millions of
  rows without a Python round trip per row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Any, Self, cast

from sqlalchemy import (
    Column,
    DateTime,
    Dialect,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    TypeDecorator,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from openami.errors import AmiError, ConfigError, LocalProtocolError, StoreError

__all__ = [
    "EngineStore",
    "UtcDateTime",
    "data_dir_url",
    "ensure_schema",
    "load_rows",
    "make_engine",
    "read_transaction",
    "schema_versions",
    "sqlite_url",
    "staging_table",
    "why",
    "write_transaction",
]

_CHUNK = 50_000  # rows handed to the driver at a time: bounded memory, few round trips


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def data_dir_url(url: str | None, data_dir: Path | None) -> str:
    """``url``, or the SQLite file ``registry.db`` under ``data_dir`` (made if missing): the
    one database a data dir's registry and the stores beside it share."""
    if url is not None:
        return url
    if data_dir is None:
        raise LocalProtocolError("give a database URL or a data directory")
    data_dir.mkdir(parents=True, exist_ok=True)
    return sqlite_url(data_dir / "registry.db")


class EngineStore:
    """The base of a store kept in one SQL database. ``open`` makes its engine and disposes
    of it again on ``close`` (or at once, when the store refuses the database); a store
    given an engine leaves it to the caller."""

    def __init__(self, engine: Engine, *, owns_engine: bool = False) -> None:
        self.engine = engine
        self._owns_engine = owns_engine

    @classmethod
    def open(cls, url: str | None = None, *, data_dir: Path | None = None) -> Self:
        """The store at ``url``, or in ``registry.db`` (SQLite) under ``data_dir``."""
        engine = make_engine(data_dir_url(url, data_dir))
        try:
            return cls(engine, owns_engine=True)
        except AmiError:
            engine.dispose()
            raise

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL and full fsync so acknowledged rows survive,
    and enforces foreign keys as PostgreSQL does (SQLite leaves them off by default)."""
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
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


def why(exc: BaseException) -> str:
    """One line saying what the database said, without SQLAlchemy's statement dump."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0] if text else ''}"


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that goes in aware and comes out aware, in UTC, on every backend (SQLite
    keeps no zone: it stores UTC and gets the zone back on the way out). A naive datetime is
    refused both ways: it has no instant, and guessing one is how data ends up an hour off."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise LocalProtocolError("naive datetimes are not stored; give a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            return value.astimezone(UTC)
        if dialect.name == "sqlite":  # stored as UTC text by process_bind_param
            return value.replace(tzinfo=UTC)
        # a zone-less column written by something else: which instant it meant is unknown
        raise StoreError("a stored timestamp has no time zone; it was not written by openami")


# -- schema versions -------------------------------------------------------------------

_versions_metadata = MetaData()
schema_versions = Table(
    "schema_version",
    _versions_metadata,
    Column("component", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)


def ensure_schema(engine: Engine, metadata: MetaData, component: str, version: int) -> None:
    """Create ``metadata``'s missing tables and record ``component`` at ``version``; refuse a
    database whose ``component`` is at another version.

    There are no migrations: a layout change bumps the version, and a database of the old
    layout is refused (``StoreError``) rather than read with the wrong columns. Several
    components share one ``schema_version`` table, one row each.
    """
    try:
        with engine.begin() as conn:
            _versions_metadata.create_all(conn)
            found = conn.execute(
                select(schema_versions.c.version).where(schema_versions.c.component == component)
            ).scalar_one_or_none()
            if found is not None and found != version:
                raise StoreError(
                    f"the {component} schema in this database is version {found}, this openami "
                    f"uses version {version}; there are no migrations: use a new database"
                )
            metadata.create_all(conn)
            if found is None:
                conn.execute(
                    schema_versions.insert(),
                    {"component": component, "version": version, "created_at": datetime.now(UTC)},
                )
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot create the {component} schema: {why(exc)}") from None


# -- transactions and bulk loading -----------------------------------------------------


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction for read-check-write work.

    On SQLite it starts with ``BEGIN IMMEDIATE``: the driver would otherwise open the
    transaction only at the first write, so the reads that checked a rule (no overlapping
    contract, say) would not be part of it; now a concurrent writer waits instead. On
    PostgreSQL it is an ordinary READ COMMITTED transaction: callers lock what their rule
    depends on (``SELECT ... FOR UPDATE``, ``LOCK TABLE``).
    """
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction for reads, rolled back at the end. On SQLite it is opened explicitly
    (the driver would run each read on its own), so several reads see one snapshot and a
    staging table made for a query goes away with the rollback."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")
        try:
            yield conn
        finally:
            conn.rollback()


@contextmanager
def staging_table(conn: Connection, name: str, columns: Sequence[Column[Any]]) -> Iterator[Table]:
    """A temporary table with the names and types of ``columns`` (no keys, no indexes: it
    loads at full speed), private to ``conn`` and dropped on the way out.

    Use it inside ``write_transaction`` or ``read_transaction``: if the work fails, the
    transaction's rollback takes the table away (a DROP in a failed PostgreSQL transaction
    would itself fail and hide the first error)."""
    table = Table(
        name,
        MetaData(),
        *(Column(c.name, c.type) for c in columns),
        prefixes=["TEMPORARY"],
    )
    table.create(conn)
    yield table
    table.drop(conn)


def _chunks(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def load_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Insert ``rows`` (tuples in the order of ``columns``) into ``table``; return how many.

    The fastest path each backend has: ``COPY ... FROM STDIN`` through psycopg 3 on
    PostgreSQL, the DB-API ``executemany`` on SQLite (a plain SQLAlchemy ``executemany``
    elsewhere). Each value still goes through its column type's bind processing, so a
    ``UtcDateTime`` refuses a naive datetime here as it does everywhere else.
    """
    dialect = conn.dialect
    processors: dict[int, Any] = {}
    for k, name in enumerate(columns):
        column_type = table.c[name].type
        if isinstance(column_type, LargeBinary):
            continue  # its processor only wraps bytes in DB-API Binary, which both drivers skip
        process = column_type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            # times repeat a lot in bulk (one registration instant for a million rows)
            cached = isinstance(column_type, DateTime | UtcDateTime)
            processors[k] = lru_cache(maxsize=4096)(process) if cached else process

    def processed(chunk: list[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """The chunk with each column run through its processor, column by column."""
        if not processors:
            return [tuple(row) for row in chunk]
        columns_of = list(zip(*chunk, strict=True))
        for k, process in processors.items():
            columns_of[k] = tuple(map(process, columns_of[k]))
        return list(zip(*columns_of, strict=True))

    count = 0
    try:
        if dialect.name == "postgresql" and dialect.driver == "psycopg":
            quote = dialect.identifier_preparer.quote
            copy_sql = (
                f"COPY {dialect.identifier_preparer.format_table(table)} "
                f"({', '.join(quote(c) for c in columns)}) FROM STDIN"
            )
            cursor = cast(Any, conn.connection.dbapi_connection).cursor()
            try:
                with cursor.copy(copy_sql) as copy:
                    for chunk in _chunks(rows, _CHUNK):
                        for row in processed(chunk):
                            copy.write_row(row)
                        count += len(chunk)
            finally:
                cursor.close()
        elif dialect.name == "sqlite":
            # positional "?" parameters, in the table's column order (the compiler's)
            insert_sql = str(table.insert().compile(dialect=dialect, column_keys=list(columns)))
            order = [columns.index(c.name) for c in table.columns if c.name in columns]
            cursor = cast(Any, conn.connection.dbapi_connection).cursor()
            try:
                for chunk in _chunks(rows, _CHUNK):
                    values = processed(chunk)
                    if order != sorted(order):
                        values = [tuple(row[k] for k in order) for row in values]
                    cursor.executemany(insert_sql, values)
                    count += len(chunk)
            finally:
                cursor.close()
        else:
            for chunk in _chunks(rows, _CHUNK):
                conn.execute(
                    table.insert(), [dict(zip(columns, row, strict=True)) for row in chunk]
                )
                count += len(chunk)
    except AmiError:
        raise
    except SQLAlchemyError:
        raise
    except Exception as exc:  # the driver's own error class (sqlite3, psycopg)
        if isinstance(exc, dialect.loaded_dbapi.Error):
            raise StoreError(f"cannot load rows into {table.name}: {why(exc)}") from None
        raise
    return count
