"""Delivering webhooks: signing, posting the outbox's due deliveries with retries, and the
background worker of ``openami api serve``.

Every POST carries three headers::

    X-OpenAMI-Delivery:  dlv_...              the same on every attempt of one delivery
    X-OpenAMI-Timestamp: 1785722400           when this attempt was signed (Unix seconds)
    X-OpenAMI-Signature: sha256=<hex>         HMAC-SHA256(secret, "<timestamp>.<body>")

A receiver recomputes the HMAC (``verify_signature``: a constant-time comparison), refuses a
timestamp more than five minutes away from its clock (a replay), and drops a delivery id it
has already processed (at-least-once delivery sends one again after a lost answer).

Any 2xx answer is a delivery. Anything else (another status, a redirect, which is never
followed, a refused connection, a timeout) is retried after 1, 2, 4, ... seconds, up to
``RetryPolicy.max_attempts`` attempts; then the delivery is ``failed``. A delivery whose
subscription was deleted, or whose consent was revoked or expired, is never sent.

Deliveries are posted only by ``Dispatcher.run_once``: from the worker thread of ``openami
api serve`` (``WebhookWorker``), or by a test. No HTTP route makes the service post
anything, so no request can make it call a URL at once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.client import HTTPException
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from openami.api.store import AccessRecord, consent, webhook_delivery, webhook_subscription
from openami.api.subscriptions import Webhooks
from openami.errors import StoreError
from openami.store.sql import why, write_transaction

__all__ = [
    "DispatchReport",
    "Dispatcher",
    "RetryPolicy",
    "WebhookWorker",
    "post_webhook",
    "sign",
    "verify_signature",
]

log = logging.getLogger(__name__)

# (url, body, headers, timeout) -> the HTTP status; raises OSError when there is none
Poster = Callable[[str, bytes, Mapping[str, str], float], int]


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-OpenAMI-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str | int,
    body: bytes,
    signature: str,
    now: float,
    tolerance: float = 300.0,
) -> bool:
    """For receivers: whether a delivery is authentic and fresh. ``timestamp`` and
    ``signature`` are the ``X-OpenAMI-Timestamp`` and ``X-OpenAMI-Signature`` headers,
    ``body`` the raw request body, ``now`` the receiver's clock (Unix seconds); a delivery
    signed more than ``tolerance`` seconds away from ``now`` is refused as a replay."""
    try:
        sent = int(str(timestamp).strip())
    except ValueError:
        return False
    if abs(now - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, sent, body), signature.strip())


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a place to go: following one would let a receiver send
    the service's POST anywhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def post_webhook(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    """POST ``body`` to ``url`` (checked at subscription: https, or http on loopback) and
    return the status; at most 4 kB of the answer are read."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            answer.read(4096)
            return int(answer.status)
    except urllib.error.HTTPError as exc:  # a status outside 2xx, redirects included
        exc.close()
        return int(exc.code)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    first_delay: float = 1.0  # seconds; doubled after each failed attempt
    max_delay: float = 3600.0

    def delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt: 1, 2, 4, ... s."""
        return timedelta(seconds=min(self.max_delay, self.first_delay * 2 ** (attempts - 1)))


@dataclass(frozen=True)
class DispatchReport:
    delivered: int = 0
    retrying: int = 0  # failed this time, to be tried again
    failed: int = 0  # failed for good: attempts used up
    dropped: int = 0  # not sent: the subscription or its consent has ended
    skipped: int = 0  # taken by another dispatcher on the same database


@dataclass
class Dispatcher:
    """Posts the outbox's due deliveries, one after the other, each with ``timeout``."""

    webhooks: Webhooks
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 5.0
    batch: int = 100  # deliveries per run: a run lasts at most batch * timeout
    post: Poster = post_webhook
    audit: Callable[[AccessRecord], None] | None = None  # the API's audit trail

    def run_once(
        self, now: datetime | None = None, stop: threading.Event | None = None
    ) -> DispatchReport:
        """Post what is due at ``now`` (default: the clock, read again for each delivery so
        that a signature's timestamp is the time it was sent); ``stop`` ends the run
        between two deliveries."""
        d, s, c = webhook_delivery.c, webhook_subscription.c, consent.c
        at = now or datetime.now(UTC)
        query = (
            select(
                d.delivery_id,
                d.payload,
                d.attempts,
                d.item_count,
                d.kind,
                s.url,
                s.secret,
                s.owner,
                s.customer,
                s.active,
                s.consent_id,
                c.revoked_at,
                c.expires_at,
            )
            .select_from(
                webhook_delivery.join(
                    webhook_subscription, s.subscription_id == d.subscription_id
                ).outerjoin(consent, c.consent_id == s.consent_id)
            )
            .where(d.status == "pending", d.next_attempt_at <= at)
            .order_by(d.next_attempt_at, d.delivery_id)
            .limit(self.batch)
        )
        try:
            with self.webhooks.engine.connect() as conn:
                due = list(conn.execute(query))
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the outbox: {why(exc)}") from None
        counts = dict.fromkeys(("delivered", "retrying", "failed", "dropped", "skipped"), 0)
        for row in due:
            if stop is not None and stop.is_set():
                break
            at = now or datetime.now(UTC)
            counts[self._one(row, at)] += 1
        return DispatchReport(**counts)

    def _one(self, row: Any, now: datetime) -> str:
        d = webhook_delivery.c
        ended = _ended(row, now)
        # claim the attempt: whoever counts it first sends it (another process running a
        # dispatcher on the same database skips it), and a crash mid-POST still counts
        lease = now + timedelta(seconds=self.timeout + 30.0)
        values: dict[str, Any] = (
            {"status": "failed", "last_error": ended}
            if ended
            else {"attempts": row.attempts + 1, "next_attempt_at": lease}
        )
        claimed = self._update(
            update(webhook_delivery)
            .where(
                d.delivery_id == row.delivery_id,
                d.status == "pending",
                d.attempts == row.attempts,
            )
            .values(**values)
        )
        if not claimed:
            return "skipped"  # another dispatcher has it
        if ended:
            return "dropped"
        attempts = row.attempts + 1
        body = row.payload.encode()
        stamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "openami-webhooks",
            "X-OpenAMI-Delivery": row.delivery_id,
            "X-OpenAMI-Timestamp": str(stamp),
            "X-OpenAMI-Signature": sign(row.secret, stamp, body),
        }
        status: int | None = None
        try:
            status = self.post(row.url, body, headers, self.timeout)
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except (OSError, ValueError, HTTPException) as exc:  # refused, timed out, bad answer
            reason = getattr(exc, "reason", None) or exc
            error = f"{exc.__class__.__name__}: {reason}"[:500]
        if self.audit is not None:
            self.audit(
                AccessRecord(
                    at=now,
                    who=row.owner,
                    customer=row.customer,
                    what=f"WEBHOOK {row.kind} {row.delivery_id} {row.url}",
                    status=status or 0,
                    rows=row.item_count,
                )
            )
        if error is None:
            done = {"status": "delivered", "delivered_at": now, "last_error": None}
            outcome = "delivered"
        elif attempts >= self.policy.max_attempts:
            done = {"status": "failed", "last_error": error}
            outcome = "failed"
        else:
            done = {"next_attempt_at": now + self.policy.delay(attempts), "last_error": error}
            outcome = "retrying"
        self._update(
            update(webhook_delivery)
            .where(d.delivery_id == row.delivery_id, d.status == "pending")
            .values(last_status=status, **done)
        )
        return outcome

    def _update(self, statement: Any) -> bool:
        try:
            with write_transaction(self.webhooks.engine) as conn:
                return bool(conn.execute(statement).rowcount)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot record a delivery: {why(exc)}") from None


def _ended(row: Any, now: datetime) -> str | None:
    if not row.active:
        return "the subscription was deleted"
    if row.consent_id is not None and row.revoked_at is not None:
        return "the consent was revoked"
    if row.consent_id is not None and (row.expires_at is None or now >= row.expires_at):
        return "the consent has expired"
    return None


@dataclass
class WebhookWorker:
    """What ``openami api serve`` runs beside the HTTP service: every ``every`` seconds, a
    scan of the MDMS's stores for new data, then a dispatcher run. ``stop`` ends it between
    two deliveries and waits for the thread."""

    webhooks: Webhooks
    dispatcher: Dispatcher
    reads_dir: Path
    events_dir: Path
    every: float = 5.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="openami-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop and wait (at most ``timeout`` s); whether the thread has ended."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def step(self) -> None:
        """One scan and one dispatcher run; a failure is logged and tried again next time."""
        try:
            report = self.webhooks.scan(self.reads_dir, self.events_dir)
            for error in report.errors:
                log.warning("webhook scan: %s", error)
            self.dispatcher.run_once(stop=self._stop)
        except Exception:  # the loop must outlive a bad file or a database hiccup
            log.exception("webhook scan or delivery failed; trying again in %.0f s", self.every)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.step()
            self._stop.wait(max(0.0, self.every - (time.monotonic() - started)))
