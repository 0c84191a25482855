"""Webhook subscriptions: a third party or an operator asks to be told, at a URL of its own,
when new data arrives, instead of polling for it.

A subscription names a callback URL (``https://``, or ``http://`` on loopback only), what it
wants to hear of (``reads``: a day of validated reads of a subscribed meter became
available, or changed; ``events``: what the meters reported, power down and up, tamper...),
and which meters. A third party's subscription belongs to its consent: only consented
meters, nothing before the consent's history limit, and nothing at all once the consent is
revoked or has expired. The service generates the signing secret and shows it once.

What is to be told goes to an outbox first (``webhook_delivery``), one row per delivery
with its own id and its JSON body, in the same transaction that decided it; ``webhooks.py``
posts due deliveries, signed, and retries failures with exponential backoff. Delivery is at
least once: a receiver drops a delivery id it has already seen.

Where the news comes from: the service does not hear from the MDMS. It scans the stores
the MDMS writes (VEE's validated reads, the event store: ``scan``), for files written since
its last scan, and keeps its place in a watermark table. The MDMS needs no hook and knows
nothing of the API; anything that appends to those stores (a VEE run, an edit, the event
ingest) is announced the same way. ``notify_reads`` and ``notify_events`` are the
producers, callable directly as well.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import polars as pl
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from openami.api.callback_url import check_url
from openami.api.store import (
    consent,
    notification_seen,
    notification_watermark,
    webhook_delivery,
    webhook_subscription,
)
from openami.errors import ConfigError, StoreError
from openami.protocols.dlms.notification import EventCode
from openami.store.shard_files import part_stamp, stamp_of
from openami.store.sql import why, write_transaction

__all__ = [
    "EVENT_KINDS",
    "Delivery",
    "ScanReport",
    "Subscription",
    "SubscriptionLimit",
    "Webhooks",
    "check_url",
]

JST = timezone(timedelta(hours=9))  # a "day" of reads is a day in Japan
EVENT_KINDS = ("events", "reads")
MAX_SUBSCRIPTIONS = 20  # active ones per operator key or consent: one rule for everyone
METERS_PER_DELIVERY = 500  # so that the fetch URL of a delivery stays a few kB
EVENTS_PER_DELIVERY = 1_000
# a file whose writer took its name's stamp longer ago than this before renaming it into
# place could be missed by the scan; the stores' writes take seconds
SCAN_GRACE = timedelta(hours=1)


class SubscriptionLimit(ConfigError):
    """The owner already has ``MAX_SUBSCRIPTIONS`` active subscriptions."""


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    owner: str  # the caller's ``who``: "operator:NAME" or "client:ID"
    owner_kind: str  # "operator" or "client"
    consent_id: str | None
    customer: str | None
    url: str
    events: tuple[str, ...]
    meters: tuple[int, ...] | None  # None: every meter the owner may read
    created_at: datetime
    active: bool  # not deleted, and its consent (if any) neither revoked nor expired
    ended_at: datetime | None


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    subscription_id: str
    kind: str
    payload: str
    item_count: int
    status: str  # pending, delivered, failed
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class ScanReport:
    files: dict[str, int]  # new files per source
    deliveries: int
    errors: tuple[str, ...] = ()  # files that could not be read (tried again next scan)


@dataclass(frozen=True)
class _Target:
    """A live subscription, resolved against its consent: what it may be told of."""

    subscription_id: str
    events: tuple[str, ...]
    meters: np.ndarray[Any, np.dtype[np.int64]] | None  # sorted; None: every meter
    data_from: datetime | None
    created_at: datetime


def _split(text: str | None) -> tuple[int, ...] | None:
    return None if text is None else tuple(int(m) for m in text.split(",") if m)


def _subscription(row: Any, now: datetime) -> Subscription:
    return Subscription(
        subscription_id=row.subscription_id,
        owner=row.owner,
        owner_kind=row.owner_kind,
        consent_id=row.consent_id,
        customer=row.customer,
        url=row.url,
        events=tuple(row.events.split(",")),
        meters=_split(row.meters),
        created_at=row.created_at,
        active=_live(row, now),
        ended_at=row.ended_at,
    )


def _live(row: Any, now: datetime) -> bool:
    if not row.active:
        return False
    if row.consent_id is None:
        return True
    return row.revoked_at is None and row.expires_at is not None and now < row.expires_at


def _with_consent() -> Any:
    s, c = webhook_subscription.c, consent.c
    return select(
        webhook_subscription,
        c.meters.label("consent_meters"),
        c.data_from,
        c.expires_at,
        c.revoked_at,
    ).select_from(webhook_subscription.outerjoin(consent, c.consent_id == s.consent_id))


def _event_name(code: int) -> str:
    try:
        return EventCode(code).name.lower()
    except ValueError:
        return f"code_{code}"


def _chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for first in range(0, len(values), size):
        yield values[first : first + size]


class Webhooks:
    """Subscriptions, the outbox of deliveries and the scan's watermark, in the API's
    database (``store.py``'s tables: SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._scan_lock = threading.Lock()

    def _read(self, what: str, statement: Any) -> list[Any]:
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(statement))
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot {what}: {why(exc)}") from None

    # -- subscriptions ---------------------------------------------------------------------

    def subscribe(
        self,
        *,
        owner: str,
        owner_kind: str,
        url: str,
        events: Iterable[str],
        meters: Iterable[int] | None = None,
        consent_id: str | None = None,
        customer: str | None = None,
        now: datetime | None = None,
    ) -> tuple[Subscription, str]:
        """A new subscription and its signing secret (shown once). The caller has checked
        that the owner may read ``meters``; a third party's owner gives its consent."""
        now = now or datetime.now(UTC)
        kinds = tuple(sorted(set(events)))
        if not kinds or any(k not in EVENT_KINDS for k in kinds):
            raise ConfigError(f"events must be some of {', '.join(EVENT_KINDS)}")
        if owner_kind not in ("operator", "client") or (owner_kind == "client") != bool(consent_id):
            raise ConfigError("a subscription belongs to an operator, or to a consent")
        check_url(url)
        chosen = None if meters is None else tuple(sorted(set(meters)))
        if chosen == ():
            raise ConfigError("meters, when given, must name at least one meter")
        secret = "whsec_" + secrets.token_urlsafe(32)
        row = {
            "subscription_id": "sub_" + secrets.token_hex(12),
            "owner": owner,
            "owner_kind": owner_kind,
            "consent_id": consent_id,
            "customer": customer,
            "url": url,
            "events": ",".join(kinds),
            "meters": None if chosen is None else ",".join(str(m) for m in chosen),
            "secret": secret,
            "created_at": now,
            "active": True,
        }
        s = webhook_subscription.c
        try:
            with write_transaction(self.engine) as conn:
                mine = select(func.count()).where(s.owner == owner, s.active.is_(True))
                if consent_id is not None:
                    mine = mine.where(s.consent_id == consent_id)
                if int(conn.execute(mine).scalar_one()) >= MAX_SUBSCRIPTIONS:
                    raise SubscriptionLimit(
                        f"at most {MAX_SUBSCRIPTIONS} active subscriptions each; delete one first"
                    )
                conn.execute(insert(webhook_subscription).values(**row))
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot record a subscription: {why(exc)}") from None
        found = self.subscriptions(subscription_id=str(row["subscription_id"]), now=now)
        return found[0], secret

    def subscriptions(
        self,
        *,
        owner: str | None = None,
        consent_id: str | None = None,
        subscription_id: str | None = None,
        now: datetime | None = None,
    ) -> list[Subscription]:
        """Subscriptions, oldest first, of an owner, a consent, or one by id."""
        now = now or datetime.now(UTC)
        s = webhook_subscription.c
        query = _with_consent().order_by(s.created_at, s.subscription_id)
        if owner is not None:
            query = query.where(s.owner == owner)
        if consent_id is not None:
            query = query.where(s.consent_id == consent_id)
        if subscription_id is not None:
            query = query.where(s.subscription_id == subscription_id)
        return [_subscription(r, now) for r in self._read("read subscriptions", query)]

    def end(self, subscription_id: str, now: datetime | None = None) -> bool:
        """Deactivate a subscription; its pending deliveries are not sent. The delivery log
        stays."""
        now = now or datetime.now(UTC)
        s, d = webhook_subscription.c, webhook_delivery.c
        try:
            with write_transaction(self.engine) as conn:
                done = conn.execute(
                    update(webhook_subscription)
                    .where(s.subscription_id == subscription_id, s.active.is_(True))
                    .values(active=False, ended_at=now)
                )
                conn.execute(
                    update(webhook_delivery)
                    .where(d.subscription_id == subscription_id, d.status == "pending")
                    .values(status="failed", last_error="the subscription was deleted")
                )
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot end a subscription: {why(exc)}") from None
        return bool(done.rowcount)

    def deliveries(self, subscription_id: str, limit: int = 100) -> list[Delivery]:
        """A subscription's delivery log, newest first."""
        d = webhook_delivery.c
        query = (
            select(webhook_delivery)
            .where(d.subscription_id == subscription_id)
            .order_by(d.created_at.desc(), d.delivery_id)
            .limit(limit)
        )
        return [Delivery(**r._mapping) for r in self._read("read deliveries", query)]

    def _targets(self, conn: Connection, now: datetime) -> list[_Target]:
        rows = conn.execute(_with_consent().where(webhook_subscription.c.active.is_(True)))
        targets = []
        for row in rows:
            if not _live(row, now):
                continue
            own = _split(row.meters)
            allowed = _split(row.consent_meters) if row.consent_id is not None else None
            chosen = own if allowed is None else tuple(set(own or allowed) & set(allowed))
            targets.append(
                _Target(
                    subscription_id=row.subscription_id,
                    events=tuple(row.events.split(",")),
                    meters=None if chosen is None else np.array(sorted(chosen), dtype=np.int64),
                    data_from=row.data_from if row.consent_id is not None else None,
                    created_at=row.created_at,
                )
            )
        return targets

    # -- producers -------------------------------------------------------------------------

    def notify_reads(self, meters: Iterable[int], day: date, now: datetime | None = None) -> int:
        """Tell every live ``reads`` subscription of these meters that their validated reads
        of ``day`` (a day in Japan) are available; returns the deliveries enqueued. Each
        carries the subscriber's own meters only, and where to fetch the reads."""
        now = now or datetime.now(UTC)
        try:
            with write_transaction(self.engine) as conn:
                return self._notify_reads(conn, self._targets(conn, now), meters, day, now)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot enqueue deliveries: {why(exc)}") from None

    def notify_events(self, events: pl.DataFrame, now: datetime | None = None) -> int:
        """Tell every live ``events`` subscription the events of its own meters: a frame with
        ``meter_id``, ``time`` (Unix s), ``code`` and ``value``, as the event store gives
        them. Returns the deliveries enqueued."""
        now = now or datetime.now(UTC)
        try:
            with write_transaction(self.engine) as conn:
                return self._notify_events(conn, self._targets(conn, now), events, now)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot enqueue deliveries: {why(exc)}") from None

    def _enqueue(
        self,
        conn: Connection,
        target: _Target,
        kind: str,
        body: dict[str, Any],
        items: int,
        now: datetime,
    ) -> None:
        delivery_id = "dlv_" + secrets.token_hex(16)
        payload = {
            "delivery_id": delivery_id,
            "subscription_id": target.subscription_id,
            "type": kind,
            "created_at": now.isoformat(),
            **body,
        }
        conn.execute(
            insert(webhook_delivery).values(
                delivery_id=delivery_id,
                subscription_id=target.subscription_id,
                kind=kind,
                payload=json.dumps(payload, separators=(",", ":")),
                item_count=items,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )

    def _notify_reads(
        self,
        conn: Connection,
        targets: list[_Target],
        meters: Iterable[int],
        day: date,
        now: datetime,
    ) -> int:
        found = np.unique(np.fromiter(meters, dtype=np.int64))
        start = datetime(day.year, day.month, day.day, tzinfo=JST)
        end = start + timedelta(days=1)
        enqueued = 0
        for target in targets:
            if "reads" not in target.events:
                continue
            if target.data_from is not None and end <= target.data_from:
                continue  # the whole day lies before what the consent lets it read
            mine = found if target.meters is None else np.intersect1d(found, target.meters)
            for chunk in _chunks(mine.tolist(), METERS_PER_DELIVERY):
                contiguous = len(chunk) > 1 and chunk[-1] - chunk[0] == len(chunk) - 1
                query: list[tuple[str, Any]] = (
                    [("meters", f"{chunk[0]}-{chunk[-1]}")]
                    if contiguous
                    else [("meter_id", m) for m in chunk]
                )
                query += [("start", start.isoformat()), ("end", end.isoformat())]
                body = {
                    "day": day.isoformat(),
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "meters": list(chunk),
                    "href": "/api/v1/interval-reads?" + urlencode(query),
                }
                self._enqueue(conn, target, "reads", body, len(chunk), now)
                enqueued += 1
        return enqueued

    def _notify_events(
        self, conn: Connection, targets: list[_Target], events: pl.DataFrame, now: datetime
    ) -> int:
        rows = events.select(
            pl.col("meter_id").cast(pl.Int64),
            pl.col("time").cast(pl.Int64),
            pl.col("code").cast(pl.Int64),
            pl.col("value").cast(pl.Int64),
        ).sort("time", "meter_id", "code")
        enqueued = 0
        for target in targets:
            if "events" not in target.events:
                continue
            mine = rows
            if target.meters is not None:
                mine = mine.filter(pl.col("meter_id").is_in(target.meters.tolist()))
            if target.data_from is not None:
                mine = mine.filter(pl.col("time") >= int(target.data_from.timestamp()))
            listed = [
                {
                    "meter_id": meter,
                    "time": datetime.fromtimestamp(at, tz=UTC).isoformat(),
                    "event": _event_name(code),
                    "code": code,
                    "value": value,
                }
                for meter, at, code, value in mine.iter_rows()
            ]
            for chunk in _chunks(listed, EVENTS_PER_DELIVERY):
                self._enqueue(conn, target, "events", {"events": list(chunk)}, len(chunk), now)
                enqueued += 1
        return enqueued

    # -- the scan of the MDMS's stores -----------------------------------------------------

    def scan(self, reads_dir: Path, events_dir: Path, now: datetime | None = None) -> ScanReport:
        """Announce what the MDMS wrote since the last scan: VEE's validated reads
        (``reads_dir``: ``day=.../part-*.parquet``) and the event store (``events_dir``).

        Each new file is announced once: the files of one day folder are marked seen in the
        transaction that enqueues their deliveries, so a crash between the two cannot lose
        or double them, and a concurrent scan (another process) finds them taken. A file is
        announced to the subscriptions that existed when it was written."""
        now = now or datetime.now(UTC)
        files: dict[str, int] = {}
        enqueued = 0
        errors: list[str] = []
        with self._scan_lock:
            for source, folder in (("reads", reads_dir), ("events", events_dir)):
                found, made = self._scan_source(source, folder, now, errors)
                files[source] = found
                enqueued += made
        return ScanReport(files, enqueued, tuple(errors))

    def _scan_source(
        self, source: str, folder: Path, now: datetime, errors: list[str]
    ) -> tuple[int, int]:
        w, n = notification_watermark.c, notification_seen.c
        try:
            with self.engine.connect() as conn:
                mark = conn.execute(select(w.stamp).where(w.source == source)).scalar_one_or_none()
                targets = [t for t in self._targets(conn, now) if source in t.events]
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the scan's state: {why(exc)}") from None
        floor = mark or ""
        if targets:
            # nothing written before the oldest subscription is for anyone
            floor = max(floor, stamp_of(min(t.created_at for t in targets)))
        new: dict[str, list[tuple[Path, str]]] = {}
        if targets:
            seen = {
                r[0]
                for r in self._read(
                    "read the scan's state",
                    select(n.file).where(n.source == source, n.stamp >= floor),
                )
            }
            for path in sorted(folder.glob("day=*/part-*.parquet")):
                stamp = part_stamp(path.name)
                key = f"{path.parent.name}/{path.name}"
                if stamp is None or stamp < floor or key in seen:
                    continue
                new.setdefault(path.parent.name, []).append((path, stamp))
        enqueued = 0
        for group in new.values():
            try:
                enqueued += self._announce(source, group, now)
            except StoreError as exc:  # one bad file must not hold up the others
                errors.append(str(exc))
        self._advance(source, mark, now)
        return sum(len(g) for g in new.values()), enqueued

    def _announce(self, source: str, group: list[tuple[Path, str]], now: datetime) -> int:
        group = sorted(group, key=lambda g: g[1])
        columns = ["meter_id", "interval_end"] if source == "reads" else ["meter_id", "time"]
        if source == "events":
            columns += ["code", "value"]
        try:
            frames = [pl.read_parquet(p, columns=columns) for p, _ in group]
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise StoreError(f"cannot read {group[0][0].parent}: {exc}") from None
        made = 0
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(
                    insert(notification_seen),
                    [
                        {"source": source, "file": f"{p.parent.name}/{p.name}", "stamp": s}
                        for p, s in group
                    ],
                )
                # a subscription hears of the files written after it was made: of the
                # (time-sorted) files, those from the first one written after it on
                by_first: dict[int, list[_Target]] = {}
                for target in self._targets(conn, now):
                    made_at = stamp_of(target.created_at)
                    first = next((k for k, (_, s) in enumerate(group) if s >= made_at), None)
                    if source in target.events and first is not None:
                        by_first.setdefault(first, []).append(target)
                for first, targets in by_first.items():
                    frame = pl.concat(frames[first:])
                    if source == "reads":
                        made += self._announce_reads(conn, targets, frame, now)
                    else:
                        events = frame.with_columns(pl.col("time").dt.epoch("s"))
                        made += self._notify_events(conn, targets, events, now)
        except IntegrityError:
            return 0  # another scan announced these files first
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot enqueue deliveries: {why(exc)}") from None
        return made

    def _announce_reads(
        self, conn: Connection, targets: list[_Target], frame: pl.DataFrame, now: datetime
    ) -> int:
        # the Japanese day an interval lies in: the one its end closes
        days = frame.select(
            pl.col("meter_id").cast(pl.Int64),
            ((pl.col("interval_end").dt.epoch("s") - 1 + 9 * 3600) // 86_400).alias("day"),
        ).unique()
        made = 0
        for number in sorted(days.get_column("day").unique().to_list()):
            meters = days.filter(pl.col("day") == number).get_column("meter_id").to_list()
            day = date(1970, 1, 1) + timedelta(days=int(number))
            made += self._notify_reads(conn, targets, meters, day, now)
        return made

    def _advance(self, source: str, mark: str | None, now: datetime) -> None:
        """Move the watermark to ``now - SCAN_GRACE`` and forget the files seen before it."""
        stamp = max(mark or "", stamp_of(now - SCAN_GRACE))
        w, n = notification_watermark.c, notification_seen.c
        try:
            with write_transaction(self.engine) as conn:
                done = conn.execute(
                    update(notification_watermark)
                    .where(w.source == source, w.stamp <= stamp)
                    .values(stamp=stamp, scanned_at=now)
                )
                if done.rowcount == 0 and mark is None:
                    conn.execute(
                        insert(notification_watermark).values(
                            source=source, stamp=stamp, scanned_at=now
                        )
                    )
                conn.execute(delete(notification_seen).where(n.source == source, n.stamp < stamp))
        except IntegrityError:
            return  # another scan recorded its watermark at the same moment
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot record the scan's watermark: {why(exc)}") from None
