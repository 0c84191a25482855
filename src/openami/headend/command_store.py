"""Durable command state (SQLAlchemy Core): SQLite in a data directory, or PostgreSQL by URL.

One row per command, keyed by its ``command_id``: submitting an id again finds the row and
adds nothing. The row holds everything needed to carry on after a crash without executing
anything twice: the exact request frame and its invocation counter, written *before* the
first send (a resend after a restart is the same bytes, which the meter executes at most
once), the read-back frame likewise, the attempts so far and when the next is due, and the
outcome. States move one way::

    accepted -> sent -> done | failed | expired
    accepted ---------> failed | expired

``finish`` moves a row to a final state only from a non-final one, in one conditional
UPDATE, so a command ends in exactly one final state even if two paths race to end it.
Timestamps are timezone-aware UTC on every backend.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    func,
    select,
    update,
)
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from openami.errors import AmiError, LocalProtocolError, StoreError
from openami.store.sql import UtcDateTime, make_engine, sqlite_url

__all__ = [
    "FINAL_STATES",
    "CommandRecord",
    "CommandState",
    "CommandStore",
    "UtcDateTime",
    "commands",
    "metadata",
    "utc",
]


class CommandState(StrEnum):
    ACCEPTED = "accepted"  # stored, nothing sent yet
    SENT = "sent"  # a frame is allocated and persisted; it may have reached the meter
    DONE = "done"  # the meter answered: success
    FAILED = "failed"
    EXPIRED = "expired"


FINAL_STATES = frozenset({CommandState.DONE, CommandState.FAILED, CommandState.EXPIRED})
_OPEN_STATES = (CommandState.ACCEPTED.value, CommandState.SENT.value)


metadata = MetaData()
commands = Table(
    "commands",
    metadata,
    # an integer key keeps submission order (first come, first sent) on every backend
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("command_id", String(128), nullable=False, unique=True),
    Column("meter_id", BigInteger, nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("payload", LargeBinary, nullable=False),  # the CommandRequest as received
    Column("deadline", BigInteger, nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("frame", LargeBinary),  # the ciphered request, exactly as sent every time
    Column("counter", BigInteger),  # its invocation counter
    Column("attempts", Integer, nullable=False, default=0),
    Column("readback_frame", LargeBinary),  # the read of the state afterwards, likewise
    Column("readback_counter", BigInteger),
    Column("readback_attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float),  # Unix seconds: when the current frame is resent
    Column("status", String(16)),
    Column("reason", String),
    Column("state_after", LargeBinary),
    Column("published", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime),  # the first send of the command frame
    Column("updated_at", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime),
)


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """One row of the command table."""

    seq: int
    command_id: str
    meter_id: int
    kind: str
    payload: bytes
    deadline: int
    state: CommandState
    frame: bytes | None
    counter: int | None
    attempts: int
    readback_frame: bytes | None
    readback_counter: int | None
    readback_attempts: int
    next_attempt_at: float | None
    status: str | None
    reason: str | None
    state_after: bytes | None
    published: bool
    created_at: datetime
    sent_at: datetime | None
    updated_at: datetime
    completed_at: datetime | None

    @property
    def reading_back(self) -> bool:
        """The command was carried out and answered; what is in flight is the read-back."""
        return self.readback_frame is not None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


def _record(row: RowMapping) -> CommandRecord:
    values = dict(row)
    values["state"] = CommandState(values["state"])
    values["published"] = bool(values["published"])
    for name in ("payload", "frame", "readback_frame", "state_after"):
        if values[name] is not None:
            values[name] = bytes(values[name])  # PostgreSQL hands back memoryview
    return CommandRecord(**values)


class CommandStore:
    """The command table on one engine. Every method is one transaction."""

    def __init__(self, engine: Engine, *, owns_engine: bool = False) -> None:
        self.engine = engine
        self._owns_engine = owns_engine
        try:
            metadata.create_all(engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the command store: {_why(exc)}") from None

    @classmethod
    def open(cls, url: str | None = None, *, data_dir: Path | None = None) -> CommandStore:
        """The store at ``url``, or ``commands.db`` (SQLite) under ``data_dir``."""
        if url is None:
            if data_dir is None:
                raise LocalProtocolError("give a database URL or a data directory")
            data_dir.mkdir(parents=True, exist_ok=True)
            url = sqlite_url(data_dir / "commands.db")
        return cls(make_engine(url), owns_engine=True)

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    def _run(self, what: str, work: Any, *, duplicates: bool = False) -> Any:
        """``work(conn)`` in one transaction; database errors become ``StoreError`` (an
        ``IntegrityError`` passes through when ``duplicates`` says the caller handles it)."""
        try:
            with self.engine.begin() as conn:
                return work(conn)
        except IntegrityError:
            if duplicates:
                raise
            raise StoreError(f"command store could not {what}: integrity error") from None
        except SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None)
            if isinstance(orig, AmiError):  # raised on purpose by a value going in or out
                raise orig from None
            raise StoreError(f"command store could not {what}: {_why(exc)}") from None

    # -- writing -----------------------------------------------------------------------

    def add(
        self,
        command_id: str,
        meter_id: int,
        kind: str,
        payload: bytes,
        deadline: int,
        at: datetime,
    ) -> bool:
        """Store a new command as accepted; False (and nothing changed) if the id is known."""
        row = {
            "command_id": command_id,
            "meter_id": meter_id,
            "kind": kind,
            "payload": payload,
            "deadline": deadline,
            "state": CommandState.ACCEPTED.value,
            "attempts": 0,
            "readback_attempts": 0,
            "published": False,
            "created_at": at,
            "updated_at": at,
        }
        try:
            self._run(
                "add a command",
                lambda conn: conn.execute(commands.insert(), row),
                duplicates=True,
            )
        except IntegrityError:
            if self.get(command_id) is None:  # not a duplicate id: something else is wrong
                raise StoreError(f"command store refused command {command_id!r}") from None
            return False
        return True

    def allocate(
        self,
        command_id: str,
        frame: bytes,
        counter: int,
        at: datetime,
        next_attempt_at: float,
        *,
        readback: bool = False,
    ) -> None:
        """Persist the frame about to be sent for the first time (the command's own, or the
        read-back's), counted as attempt 1. Raises ``StoreError`` if the row is not in the
        state that allows it (another head-end moved it, or a frame is already there)."""
        c = commands.c
        if readback:
            where = (c.state == CommandState.SENT.value) & c.readback_frame.is_(None)
            values: dict[str, Any] = {
                "readback_frame": frame,
                "readback_counter": counter,
                "readback_attempts": 1,
            }
        else:
            where = (c.state == CommandState.ACCEPTED.value) & c.frame.is_(None)
            values = {
                "state": CommandState.SENT.value,
                "frame": frame,
                "counter": counter,
                "attempts": 1,
                "sent_at": at,
            }
        values.update(next_attempt_at=next_attempt_at, updated_at=at)
        statement = update(commands).where((c.command_id == command_id) & where).values(values)
        changed = self._run("persist a frame", lambda conn: conn.execute(statement).rowcount)
        if changed != 1:
            raise StoreError(f"command {command_id!r} cannot take a new frame in its state")

    def attempted(
        self, command_id: str, attempts: int, next_attempt_at: float, at: datetime
    ) -> None:
        """Record one more send of the current frame (the command's or the read-back's)."""
        record = self.get(command_id)
        if record is None or record.state is not CommandState.SENT:
            return
        column = "readback_attempts" if record.reading_back else "attempts"
        statement = (
            update(commands)
            .where(
                (commands.c.command_id == command_id)
                & (commands.c.state == CommandState.SENT.value)
            )
            .values({column: attempts, "next_attempt_at": next_attempt_at, "updated_at": at})
        )
        self._run("record an attempt", lambda conn: conn.execute(statement))

    def finish(
        self,
        command_id: str,
        state: CommandState,
        status: str,
        reason: str,
        state_after: bytes | None,
        at: datetime,
    ) -> bool:
        """Move a command to its final state; False if it already had one (nothing changes)."""
        if state not in FINAL_STATES:
            raise LocalProtocolError(f"{state} is not a final state")
        statement = (
            update(commands)
            .where((commands.c.command_id == command_id) & commands.c.state.in_(_OPEN_STATES))
            .values(
                state=state.value,
                status=status,
                reason=reason,
                state_after=state_after,
                next_attempt_at=None,
                completed_at=at,
                updated_at=at,
            )
        )
        return bool(self._run("finish a command", lambda c: c.execute(statement).rowcount) == 1)

    def mark_published(self, command_ids: Iterable[str]) -> None:
        ids = list(command_ids)
        if not ids:
            return
        statement = update(commands).where(commands.c.command_id.in_(ids)).values(published=True)
        self._run("mark results published", lambda conn: conn.execute(statement))

    # -- reading -----------------------------------------------------------------------

    def _select(self, what: str, statement: Any) -> list[CommandRecord]:
        def work(conn: Connection) -> list[CommandRecord]:
            return [_record(row) for row in conn.execute(statement).mappings()]

        result: list[CommandRecord] = self._run(what, work)
        return result

    def get(self, command_id: str) -> CommandRecord | None:
        rows = self._select(
            "read a command", select(commands).where(commands.c.command_id == command_id)
        )
        return rows[0] if rows else None

    def in_state(self, state: CommandState, limit: int | None = None) -> list[CommandRecord]:
        """Commands in ``state``, in submission order."""
        statement = select(commands).where(commands.c.state == state.value).order_by(commands.c.seq)
        if limit is not None:
            statement = statement.limit(limit)
        return self._select("list commands", statement)

    def unpublished(self) -> list[CommandRecord]:
        """Commands that ended but whose result has not been handed out yet."""
        finals = [s.value for s in FINAL_STATES]
        statement = (
            select(commands)
            .where(commands.c.state.in_(finals) & commands.c.published.is_(False))
            .order_by(commands.c.seq)
        )
        return self._select("list unpublished results", statement)

    def max_counters(self) -> dict[int, int]:
        """Per meter, the highest invocation counter any stored frame uses: a head-end whose
        counters were lost must start above these or the meter drops its requests as replays.
        """
        c = commands.c
        statement = select(c.meter_id, func.max(c.counter), func.max(c.readback_counter)).group_by(
            c.meter_id
        )

        def work(conn: Connection) -> dict[int, int]:
            out: dict[int, int] = {}
            for meter_id, top, readback in conn.execute(statement):
                best = max(v for v in (top, readback, -1) if v is not None)
                if best >= 0:
                    out[int(meter_id)] = int(best)
            return out

        result: dict[int, int] = self._run("read counters", work)
        return result

    def counts(self) -> dict[CommandState, int]:
        """How many commands are in each state."""
        statement = select(commands.c.state, func.count()).group_by(commands.c.state)

        def work(conn: Connection) -> dict[CommandState, int]:
            return {CommandState(s): int(n) for s, n in conn.execute(statement)}

        result: dict[CommandState, int] = self._run("count commands", work)
        return result


def _why(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    return f"{exc.__class__.__name__}: {text.splitlines()[0] if text else ''}"


def utc(seconds: float) -> datetime:
    """Unix seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, tz=UTC)
