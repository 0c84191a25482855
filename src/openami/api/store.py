"""What the Route C service keeps in SQL: operator keys, third parties, customers' logins,
consents (authorization codes and access tokens) and the audit trail of every data access.

Beside the registry, in the same database (SQLite by default, PostgreSQL in production).
Secrets are never stored: a key, client secret, code or token is 32 random bytes, kept as
its SHA-256 (enough for a secret that was never chosen by a person); a customer's password
is kept as scrypt. What was issued is shown once, when it is issued.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from openami.errors import ConfigError, StoreError
from openami.store.sql import UtcDateTime, ensure_schema, why, write_transaction

__all__ = [
    "AccessRecord",
    "ApiStore",
    "Client",
    "Consent",
    "OperatorKey",
    "Role",
    "ServiceOrder",
    "Tokens",
    "registration_token",
]

COMPONENT, SCHEMA_VERSION = "api", 1
metadata = MetaData()

api_key = Table(
    "api_key",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
)
oauth_client = Table(
    "oauth_client",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("secret_hash", String(64), nullable=False),
    Column("name", String(128), nullable=False),
    Column("redirect_uri", String(512), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)
customer_login = Table(
    "customer_login",
    metadata,
    Column("customer", String(64), primary_key=True),
    Column("salt", String(32), nullable=False),
    Column("password_hash", String(128), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)
consent = Table(
    "consent",
    metadata,
    Column("consent_id", String(32), primary_key=True),
    Column("client_id", String(64), nullable=False, index=True),
    Column("customer", String(64), nullable=False, index=True),
    Column("scope", String(512), nullable=False),
    Column("meters", Text, nullable=False),  # the consented meter ids, comma-separated
    Column("data_from", UtcDateTime, nullable=False),  # reads with interval ends after this
    Column("expires_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
    Column("code_hash", String(64), unique=True),  # the authorization code, until exchanged
    Column("code_expires_at", UtcDateTime),
    Column("redirect_uri", String(512), nullable=False),
    Column("token_hash", String(64), unique=True),
)
oauth_refresh = Table(  # refresh tokens: each is spent by its use, a new one comes back
    "oauth_refresh",
    metadata,
    Column("refresh_hash", String(64), primary_key=True),
    Column("consent_id", String(32), nullable=False, index=True),
    Column("client_id", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime),
)
access_log = Table(
    "access_log",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("who", String(160), nullable=False),  # "key:NAME", "client:ID", "customer:ID"
    Column("customer", String(64)),
    Column("what", String(512), nullable=False),
    Column("status", Integer, nullable=False),
    Column("rows", BigInteger, nullable=False),
)

service_order = Table(
    "service_order",
    metadata,
    Column("order_id", String(64), primary_key=True),  # the head-end's command id
    Column("meter_id", BigInteger, nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("parameters", String(256), nullable=False),  # e.g. "minutes=15"
    Column("requested_by", String(160), nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("deadline", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # pending, success, failed, expired
    Column("reason", Text),
    Column("state_hex", Text),  # what the meter reported afterwards (A-XDR, hex)
    Column("completed_at", UtcDateTime),
)

# webhook subscriptions (``subscriptions.py``): who is told of what, where, and the outbox
# of what is to be told (at-least-once, retried with backoff, one id per delivery)
webhook_subscription = Table(
    "webhook_subscription",
    metadata,
    Column("subscription_id", String(40), primary_key=True),
    Column("owner", String(160), nullable=False, index=True),  # the caller's ``who``
    Column("owner_kind", String(16), nullable=False),  # "operator" or "client"
    Column("consent_id", String(32), ForeignKey("consent.consent_id"), index=True),
    Column("customer", String(64)),  # a third party's consenting customer
    Column("url", String(512), nullable=False),
    Column("events", String(32), nullable=False),  # "events", "reads" or "events,reads"
    Column("meters", Text),  # comma-separated; NULL: every meter the owner may read
    # the signing secret itself: an HMAC needs it, unlike a token that is only checked
    Column("secret", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("ended_at", UtcDateTime),
)
webhook_delivery = Table(
    "webhook_delivery",
    metadata,
    Column("delivery_id", String(40), primary_key=True),
    Column(
        "subscription_id",
        String(40),
        ForeignKey("webhook_subscription.subscription_id"),
        nullable=False,
        index=True,
    ),
    Column("kind", String(16), nullable=False),  # "reads" or "events"
    Column("payload", Text, nullable=False),  # the JSON body, the same on every attempt
    Column("item_count", Integer, nullable=False),  # meters (reads) or events it carries
    Column("status", String(16), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("last_status", Integer),  # the receiver's HTTP status, if it answered
    Column("last_error", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime),
    Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
)
# what the notification scan has announced: per source ("reads", "events"), every file
# written at or after the watermark that was seen (older entries are pruned with it)
notification_watermark = Table(
    "notification_watermark",
    metadata,
    Column("source", String(16), primary_key=True),
    Column("stamp", String(32), nullable=False),  # a file name's write stamp, UTC
    Column("scanned_at", UtcDateTime, nullable=False),
)
notification_seen = Table(
    "notification_seen",
    metadata,
    Column("source", String(16), primary_key=True),
    Column("file", String(255), primary_key=True),  # "day=YYYY-MM-DD/part-....parquet"
    Column("stamp", String(32), nullable=False),
)

CODE_LIFETIME = timedelta(minutes=5)


class Role(StrEnum):
    """Operator roles, each allowed what the one before is and more."""

    READ_ONLY = "read-only"
    OPERATOR = "operator"  # service orders: disconnect, reconnect, interval change, reads
    ADMINISTRATOR = "administrator"  # keys, third parties, customers' logins

    def allows(self, needed: Role) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True)
class OperatorKey:
    name: str
    role: Role


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    redirect_uri: str
    created_at: datetime | None = None


@dataclass(frozen=True)
class Consent:
    """What a customer let a third party see: these meters, reads ending after
    ``data_from``, until ``expires_at`` (or revocation)."""

    consent_id: str
    client_id: str
    customer: str
    scope: str
    meters: tuple[int, ...]
    data_from: datetime
    expires_at: datetime
    created_at: datetime
    revoked_at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


class Tokens(NamedTuple):
    access: str
    refresh: str
    consent: Consent


@dataclass(frozen=True)
class ServiceOrder:
    order_id: str
    meter_id: int
    kind: str
    parameters: str
    requested_by: str
    requested_at: datetime
    deadline: datetime
    status: str
    reason: str | None = None
    state_hex: str | None = None
    completed_at: datetime | None = None


@dataclass(frozen=True)
class AccessRecord:
    at: datetime
    who: str
    customer: str | None
    what: str
    status: int
    rows: int


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _refresh_row(refresh: str, consent_id: str, client: Client, now: datetime) -> Any:
    return insert(oauth_refresh).values(
        refresh_hash=_digest(refresh),
        consent_id=consent_id,
        client_id=client.client_id,
        created_at=now,
    )


def registration_token(client_id: str, secret: str) -> str:
    """The client's ESPI registration access token. It is derived from the client secret
    rather than stored: the store keeps only the secret's digest, yet a client that proves
    its secret gets the same token each time, and a new secret would give a new token."""
    mac = hmac.new(secret.encode(), f"espi-registration:{client_id}".encode(), "sha256")
    return "rat_" + mac.hexdigest()


def _password_hash(password: str, salt: str) -> str:
    return hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=2**14, r=8, p=1).hex()


def _consent(row: Any) -> Consent:
    return Consent(
        consent_id=row.consent_id,
        client_id=row.client_id,
        customer=row.customer,
        scope=row.scope,
        meters=tuple(int(m) for m in row.meters.split(",") if m),
        data_from=row.data_from,
        expires_at=row.expires_at,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class ApiStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        ensure_schema(engine, metadata, COMPONENT, SCHEMA_VERSION)

    def _run(self, what: str, statement: Any) -> Any:
        try:
            with write_transaction(self.engine) as conn:
                return conn.execute(statement)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot {what}: {why(exc)}") from None

    def _all(self, what: str, statement: Any) -> list[Any]:
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(statement))
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot {what}: {why(exc)}") from None

    # -- operator keys -------------------------------------------------------------------

    def create_key(self, name: str, role: Role, now: datetime | None = None) -> str:
        """A new operator key (shown once) for ``name`` with ``role``."""
        if not name.strip():
            raise ConfigError("an operator key needs a name")
        key = "oak_" + secrets.token_urlsafe(32)
        row = {"key_hash": _digest(key), "name": name, "role": Role(role).value}
        self._run("create a key", insert(api_key).values(**row, created_at=now or _now()))
        return key

    def operator(self, key: str) -> OperatorKey | None:
        rows = self._all(
            "check a key",
            select(api_key.c.name, api_key.c.role).where(
                api_key.c.key_hash == _digest(key), api_key.c.revoked_at.is_(None)
            ),
        )
        return OperatorKey(rows[0].name, Role(rows[0].role)) if rows else None

    # -- third parties -------------------------------------------------------------------

    def register_client(self, name: str, redirect_uri: str) -> tuple[Client, str]:
        """A third party's client id and secret (the secret is shown once)."""
        if not redirect_uri.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ConfigError(
                f"--redirect-uri {redirect_uri!r} must be https:// (or http:// on loopback)"
            )
        client = Client("cl_" + secrets.token_hex(12), name, redirect_uri, _now())
        secret = "cs_" + secrets.token_urlsafe(32)
        self._run(
            "register a client",
            insert(oauth_client).values(
                client_id=client.client_id,
                secret_hash=_digest(secret),
                name=name,
                redirect_uri=redirect_uri,
                created_at=client.created_at,
            ),
        )
        return client, secret

    def client(self, client_id: str, secret: str | None = None) -> Client | None:
        """The client, if known (and, when ``secret`` is given, if it matches)."""
        rows = self._all(
            "find a client", select(oauth_client).where(oauth_client.c.client_id == client_id)
        )
        if not rows:
            return None
        row = rows[0]
        if secret is not None and not hmac.compare_digest(row.secret_hash, _digest(secret)):
            return None
        return Client(row.client_id, row.name, row.redirect_uri, row.created_at)

    # -- customers' logins -----------------------------------------------------------------

    def set_login(self, customer: str) -> str:
        """A new password for ``customer``'s login on the consent page (shown once)."""
        password = secrets.token_urlsafe(12)
        salt = secrets.token_hex(16)
        row = {"salt": salt, "password_hash": _password_hash(password, salt), "created_at": _now()}
        try:
            with write_transaction(self.engine) as conn:
                done = conn.execute(
                    update(customer_login).where(customer_login.c.customer == customer), row
                )
                if done.rowcount == 0:
                    conn.execute(insert(customer_login).values(customer=customer, **row))
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot set a login: {why(exc)}") from None
        return password

    def check_login(self, customer: str, password: str) -> bool:
        rows = self._all(
            "check a login",
            select(customer_login).where(customer_login.c.customer == customer),
        )
        if not rows:
            _password_hash(password, "00" * 16)  # the same work either way
            return False
        expected = _password_hash(password, rows[0].salt)
        return hmac.compare_digest(rows[0].password_hash, expected)

    # -- consents ------------------------------------------------------------------------

    def grant(
        self,
        client: Client,
        customer: str,
        scope: str,
        meters: Sequence[int],
        data_from: datetime,
        expires_at: datetime,
        now: datetime,
    ) -> str:
        """Record a consent and return its one-time authorization code."""
        code = secrets.token_urlsafe(32)
        self._run(
            "record a consent",
            insert(consent).values(
                consent_id=secrets.token_hex(16),
                client_id=client.client_id,
                customer=customer,
                scope=scope,
                meters=",".join(str(m) for m in sorted(set(meters))),
                data_from=data_from,
                expires_at=expires_at,
                created_at=now,
                code_hash=_digest(code),
                code_expires_at=now + CODE_LIFETIME,
                redirect_uri=client.redirect_uri,
            ),
        )
        return code

    def exchange(
        self, client: Client, code: str, redirect_uri: str, now: datetime
    ) -> Tokens | None:
        """The access and refresh tokens for a code issued to ``client`` (once: the code
        is spent)."""
        token, refresh = "at_" + secrets.token_urlsafe(32), "rt_" + secrets.token_urlsafe(32)
        try:
            with write_transaction(self.engine) as conn:
                row = conn.execute(
                    select(consent).where(consent.c.code_hash == _digest(code))
                ).first()
                if (
                    row is None
                    or row.client_id != client.client_id
                    or row.redirect_uri != redirect_uri
                    or row.code_expires_at is None
                    or row.code_expires_at <= now
                    or row.revoked_at is not None
                ):
                    return None
                conn.execute(
                    update(consent)
                    .where(consent.c.consent_id == row.consent_id)
                    .values(code_hash=None, code_expires_at=None, token_hash=_digest(token))
                )
                conn.execute(_refresh_row(refresh, row.consent_id, client, now))
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot exchange a code: {why(exc)}") from None
        return Tokens(token, refresh, _consent(row))

    def refresh(self, client: Client, refresh: str, now: datetime) -> Tokens | None:
        """New tokens for a refresh token issued to ``client``, while its consent holds.
        The refresh token is spent and the consent's previous access token stops working
        (rotation: a stolen pair is good for one use at most)."""
        token, fresh = "at_" + secrets.token_urlsafe(32), "rt_" + secrets.token_urlsafe(32)
        try:
            with write_transaction(self.engine) as conn:
                spent = conn.execute(
                    update(oauth_refresh)
                    .where(
                        oauth_refresh.c.refresh_hash == _digest(refresh),
                        oauth_refresh.c.client_id == client.client_id,
                        oauth_refresh.c.used_at.is_(None),
                    )
                    .values(used_at=now)
                    .returning(oauth_refresh.c.consent_id)
                ).first()
                if spent is None:
                    return None
                row = conn.execute(
                    select(consent).where(consent.c.consent_id == spent.consent_id)
                ).first()
                if row is None or not _consent(row).active(now):
                    return None  # the transaction still spends the refresh token
                conn.execute(
                    update(consent)
                    .where(consent.c.consent_id == row.consent_id)
                    .values(token_hash=_digest(token))
                )
                conn.execute(_refresh_row(fresh, row.consent_id, client, now))
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot refresh a token: {why(exc)}") from None
        return Tokens(token, fresh, _consent(row))

    def consent_of_token(self, token: str) -> Consent | None:
        rows = self._all(
            "check a token", select(consent).where(consent.c.token_hash == _digest(token))
        )
        return _consent(rows[0]) if rows else None

    def consents(self, customer: str | None = None) -> list[Consent]:
        query = select(consent).order_by(consent.c.created_at)
        if customer is not None:
            query = query.where(consent.c.customer == customer)
        return [_consent(r) for r in self._all("list consents", query)]

    def revoke(self, consent_id: str, now: datetime) -> bool:
        done = self._run(
            "revoke a consent",
            update(consent)
            .where(consent.c.consent_id == consent_id, consent.c.revoked_at.is_(None))
            .values(revoked_at=now, code_hash=None),
        )
        return bool(done.rowcount)

    def revoke_token(self, token: str, now: datetime) -> bool:
        found = self.consent_of_token(token)
        return found is not None and self.revoke(found.consent_id, now)

    # -- service orders ------------------------------------------------------------------

    def add_order(self, order: ServiceOrder) -> None:
        self._run("record a service order", insert(service_order).values(**order.__dict__))

    def finish_order(
        self, order_id: str, status: str, reason: str, state_hex: str | None, at: datetime
    ) -> bool:
        """Record how an order ended (once: a result delivered again changes nothing)."""
        done = self._run(
            "record a service order's result",
            update(service_order)
            .where(service_order.c.order_id == order_id, service_order.c.status == "pending")
            .values(status=status, reason=reason, state_hex=state_hex, completed_at=at),
        )
        return bool(done.rowcount)

    def orders(
        self, order_id: str | None = None, meter_id: int | None = None
    ) -> list[ServiceOrder]:
        query = select(service_order).order_by(service_order.c.requested_at)
        if order_id is not None:
            query = query.where(service_order.c.order_id == order_id)
        if meter_id is not None:
            query = query.where(service_order.c.meter_id == meter_id)
        return [ServiceOrder(**r._mapping) for r in self._all("read service orders", query)]

    # -- the audit trail -----------------------------------------------------------------

    def record(self, entry: AccessRecord) -> None:
        self._run(
            "record an access",
            insert(access_log).values(
                at=entry.at,
                who=entry.who[:160],
                customer=entry.customer,
                what=entry.what[:512],
                status=entry.status,
                rows=entry.rows,
            ),
        )

    def accesses(self, customer: str | None = None, limit: int = 1000) -> list[AccessRecord]:
        query = select(access_log).order_by(access_log.c.seq.desc()).limit(limit)
        if customer is not None:
            query = query.where(access_log.c.customer == customer)
        return [
            AccessRecord(r.at, r.who, r.customer, r.what, r.status, r.rows)
            for r in self._all("read the audit trail", query)
        ]

    def count_accesses(self) -> int:
        rows = self._all("count accesses", select(func.count()).select_from(access_log))
        return int(rows[0][0])


def _now() -> datetime:
    return datetime.now(UTC)
