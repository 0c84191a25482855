"""B-route credentials: the ID and password a customer gets from the utility to read their
meter over Route B (ECHONET Lite over Wi-SUN, authenticated by PANA).

When a customer applies, the MDMS issues a pair for their meter: a B-route ID of 32
upper-case hexadecimal digits and a password of 12 letters and digits, both drawn from
``secrets``. A meter has at most one active pair: issuing again revokes the old one (a
customer who moved out must not keep reading the meter). ``lookup`` is what the meter side's
authentication asks: the password of an active ID, or None.

The password is stored as issued, not hashed: PANA's EAP-PSK derives its key from the
password itself, so the meter side needs it back. Guard the database like the head-end's key
store. Neither the ID nor the password is ever logged, and both stay out of ``repr``.

The table lives in the registry's database (SQLite ``DATA_DIR/registry.db`` or PostgreSQL by
URL), with a foreign key to the registry's meters; revoked pairs stay as history.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    Engine,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from openami.errors import AmiError, LocalProtocolError, RegistryError, StoreError
from openami.log import get_logger
from openami.mdm.registry import schema as registry_schema
from openami.store.sql import (
    EngineStore,
    UtcDateTime,
    ensure_schema,
    read_transaction,
    why,
    write_transaction,
)

__all__ = [
    "COMPONENT",
    "ID_LENGTH",
    "PASSWORD_ALPHABET",
    "PASSWORD_LENGTH",
    "SCHEMA_VERSION",
    "BRouteCredentials",
    "BRouteStore",
    "broute_credential",
]

log = get_logger("mdm.broute")

COMPONENT = "mdm.broute"
SCHEMA_VERSION = 1
ID_LENGTH = 32
PASSWORD_LENGTH = 12
PASSWORD_ALPHABET = string.ascii_letters + string.digits

metadata = MetaData()

broute_credential = Table(
    "broute_credential",
    metadata,
    Column("rbid", String(ID_LENGTH), primary_key=True),
    Column(
        "meter_id",
        registry_schema.MeterId,
        ForeignKey(registry_schema.meter.c.meter_id),
        nullable=False,
    ),
    Column("password", String(PASSWORD_LENGTH), nullable=False),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
    CheckConstraint(
        "revoked_at IS NULL OR revoked_at >= issued_at", name="ck_broute_credential_span"
    ),
)
_active = broute_credential.c.revoked_at.is_(None)
# one active pair per meter, guarded by the database on both backends
Index(
    "ux_broute_credential_active_meter",
    broute_credential.c.meter_id,
    unique=True,
    sqlite_where=_active,
    postgresql_where=_active,
)
Index("ix_broute_credential_meter", broute_credential.c.meter_id, broute_credential.c.issued_at)


@dataclass(frozen=True)
class BRouteCredentials:
    """One issued pair; ``revoked_at`` is None while it is active."""

    meter_id: int
    rbid: str = field(repr=False)
    password: str = field(repr=False)
    issued_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def new_rbid() -> str:
    return secrets.token_hex(ID_LENGTH // 2).upper()


def new_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


def _instant(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise LocalProtocolError("naive datetimes are not stored; give a time zone")
    return at.astimezone(UTC)


def _credentials(row: Any) -> BRouteCredentials:
    values = row._mapping
    return BRouteCredentials(
        int(values["meter_id"]),
        values["rbid"],
        values["password"],
        values["issued_at"],
        values["revoked_at"],
    )


class BRouteStore(EngineStore):
    """Issues, revokes and looks up B-route credentials in the registry's database."""

    def __init__(self, engine: Engine, *, owns_engine: bool = False) -> None:
        super().__init__(engine, owns_engine=owns_engine)
        # the foreign key needs the registry's meters; an empty registry is fine
        ensure_schema(
            engine,
            registry_schema.metadata,
            registry_schema.COMPONENT,
            registry_schema.SCHEMA_VERSION,
        )
        ensure_schema(engine, metadata, COMPONENT, SCHEMA_VERSION)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None)
            if isinstance(orig, AmiError):
                raise orig from None
            raise StoreError(f"the B-route store could not {what}: {why(exc)}") from None

    # -- changes -------------------------------------------------------------------------

    def issue(self, meter_id: int, at: datetime | None = None) -> BRouteCredentials:
        """A new pair for ``meter_id``; the active one, if any, is revoked at the same
        instant. ``RegistryError`` when the registry does not know the meter."""
        when = None if at is None else _instant(at)

        def work(conn: Connection) -> BRouteCredentials:
            now = self._lock_meter(conn, meter_id, when)
            self._revoke(conn, meter_id, now)
            issued = BRouteCredentials(meter_id, new_rbid(), new_password(), now)
            conn.execute(
                broute_credential.insert().values(
                    rbid=issued.rbid,
                    meter_id=meter_id,
                    password=issued.password,
                    issued_at=now,
                )
            )
            return issued

        with self._errors("issue credentials"), write_transaction(self.engine) as conn:
            issued = work(conn)
        log.info("B-route credentials issued for meter %d", meter_id)
        return issued

    def revoke(self, meter_id: int, at: datetime | None = None) -> bool:
        """Revoke the meter's active pair; False when it had none."""
        when = None if at is None else _instant(at)

        def work(conn: Connection) -> bool:
            return self._revoke(conn, meter_id, self._lock_meter(conn, meter_id, when))

        with self._errors("revoke credentials"), write_transaction(self.engine) as conn:
            revoked = work(conn)
        if revoked:
            log.info("B-route credentials of meter %d revoked", meter_id)
        return revoked

    def _revoke(self, conn: Connection, meter_id: int, now: datetime) -> bool:
        active = conn.execute(
            select(broute_credential.c.issued_at).where(
                broute_credential.c.meter_id == meter_id, _active
            )
        ).scalar_one_or_none()
        if active is None:
            return False
        if now < active:
            raise RegistryError(
                f"meter {meter_id}'s credentials were issued at {active.isoformat()}, "
                f"after {now.isoformat()}"
            )
        conn.execute(
            update(broute_credential)
            .where(broute_credential.c.meter_id == meter_id, _active)
            .values(revoked_at=now)
        )
        return True

    def _lock_meter(self, conn: Connection, meter_id: int, at: datetime | None) -> datetime:
        """Make sure the meter exists and hold its row until the transaction ends, so two
        changes to one meter run one after the other (SQLite: the write lock already does);
        the instant of the change: ``at``, or now, read once the lock is held so that changes
        are stamped in the order they happen."""
        found = conn.execute(
            select(registry_schema.meter.c.meter_id)
            .where(registry_schema.meter.c.meter_id == meter_id)
            .with_for_update()
        ).first()
        if found is None:
            raise RegistryError(f"meter {meter_id} is not in the registry")
        return datetime.now(UTC) if at is None else at

    # -- reads ---------------------------------------------------------------------------

    def lookup(self, rbid: str) -> str | None:
        """The password of the active B-route ID ``rbid``; None when the ID is unknown or
        revoked. What the meter side's authentication (PANA) asks."""
        statement = select(broute_credential.c.password).where(
            broute_credential.c.rbid == rbid.upper(), _active
        )
        with self._errors("look up credentials"), read_transaction(self.engine) as conn:
            password = conn.execute(statement).scalar_one_or_none()
        return None if password is None else str(password)

    def for_meter(self, meter_id: int) -> BRouteCredentials | None:
        """The meter's active pair, or None."""
        statement = select(broute_credential).where(
            broute_credential.c.meter_id == meter_id, _active
        )
        with self._errors("read credentials"), read_transaction(self.engine) as conn:
            row = conn.execute(statement).first()
        return None if row is None else _credentials(row)

    def history(self, meter_id: int) -> list[BRouteCredentials]:
        """Every pair the meter has had, oldest first (revoked ones included)."""
        statement = (
            select(broute_credential)
            .where(broute_credential.c.meter_id == meter_id)
            .order_by(broute_credential.c.issued_at, broute_credential.c.revoked_at.nulls_last())
        )
        with self._errors("read credentials"), read_transaction(self.engine) as conn:
            rows = conn.execute(statement).all()
        return [_credentials(row) for row in rows]
