"""Who is calling, and what they may see: the one gate every data route goes through.

Three kinds of caller, each with its own credential:

- an **operator** (``X-API-Key``): read-only, operator or administrator; sees every meter;
  service orders need the operator role, managing keys and third parties the administrator;
- a **third party** (``Authorization: Bearer`` with an OAuth2 access token): sees only what
  the customer consented to: those meters, reads ending after the consent's history limit,
  until the consent expires or is revoked (then nothing at all);
- a **customer** (HTTP Basic with the login the utility gave them): their own meters, for
  Download My Data and to list and revoke their consents.

Every third party gets the same rate limit and daily quota (``Limits``): fairness is one
rule for all, the incumbent retailer included.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from openami.api.store import ApiStore, Consent, Role

__all__ = ["Caller", "Denied", "Limits", "RateLimiter", "client_credentials", "identify"]


class Denied(Exception):
    """The request is refused: ``status`` (401, 403, 404, 429) and a reason for the caller."""

    def __init__(self, status: int, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class Caller:
    kind: str  # "operator", "client", "customer"
    name: str  # key name, client id, or customer mRID
    role: Role | None = None
    consent: Consent | None = None
    customer: str | None = None  # whose data (a client's consenting customer, a customer)
    meters: frozenset[int] | None = None  # None: every meter (operators)
    data_from: datetime | None = None  # reads ending after this only

    @property
    def who(self) -> str:
        return f"{self.kind}:{self.name}"

    def require(self, role: Role) -> None:
        if self.kind != "operator" or self.role is None or not self.role.allows(role):
            raise Denied(403, f"this needs an operator key with the {role.value} role")

    def may_read(self, meter_id: int) -> None:
        if self.meters is not None and meter_id not in self.meters:
            # the same answer whether or not the meter exists: nothing leaks
            raise Denied(404, f"no meter {meter_id} among those this caller may read")

    def clip(self, start: datetime) -> datetime:
        """The start of a read request, moved up to what the consent allows."""
        if self.data_from is not None and start < self.data_from:
            return self.data_from
        return start


@dataclass(frozen=True)
class Limits:
    per_second: float = 20.0  # sustained requests per second, per caller
    burst: int = 40
    per_day: int = 100_000


@dataclass
class _Bucket:
    tokens: float
    at: float
    day: int
    used: int = 0


@dataclass
class RateLimiter:
    limits: Limits = field(default_factory=Limits)
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, who: str) -> None:
        now = self.clock()
        day = int(time.time() // 86_400)
        with self._lock:
            bucket = self._buckets.get(who)
            if bucket is None or bucket.day != day:
                bucket = self._buckets[who] = _Bucket(float(self.limits.burst), now, day)
            bucket.tokens = min(
                float(self.limits.burst), bucket.tokens + (now - bucket.at) * self.limits.per_second
            )
            bucket.at = now
            if bucket.used >= self.limits.per_day:
                raise Denied(429, "daily quota used up", retry_after=3600.0)
            if bucket.tokens < 1.0:
                wait = (1.0 - bucket.tokens) / self.limits.per_second
                raise Denied(429, "too many requests", retry_after=wait)
            bucket.tokens -= 1.0
            bucket.used += 1


def _basic(header: str) -> tuple[str, str] | None:
    try:
        raw = base64.b64decode(header.split(" ", 1)[1], validate=True).decode()
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
    user, sep, password = raw.partition(":")
    return (user, password) if sep else None


def client_credentials(
    authorization: str | None, client_id: str | None = None, client_secret: str | None = None
) -> tuple[str, str] | None:
    """A third party's (client_id, client_secret): from HTTP Basic (client_secret_basic),
    else from the form's fields; None when neither is given whole."""
    if authorization and authorization.lower().startswith("basic "):
        return _basic(authorization)
    if client_id and client_secret:
        return client_id, client_secret
    return None


def identify(
    store: ApiStore,
    api_key: str | None,
    authorization: str | None,
    meters_of: Callable[[str, datetime], frozenset[int]],
    now: datetime | None = None,
) -> Caller:
    """The caller behind the request's credentials, or ``Denied(401)``."""
    now = now or datetime.now(UTC)
    if api_key:
        key = store.operator(api_key)
        if key is None:
            raise Denied(401, "unknown or revoked API key")
        return Caller("operator", key.name, role=key.role)
    if authorization and authorization.lower().startswith("bearer "):
        consent = store.consent_of_token(authorization[7:].strip())
        if consent is None:
            raise Denied(401, "unknown access token")
        if not consent.active(now):
            raise Denied(401, "the consent behind this token was revoked or has expired")
        return Caller(
            "client",
            consent.client_id,
            consent=consent,
            customer=consent.customer,
            meters=frozenset(consent.meters),
            data_from=consent.data_from,
        )
    if authorization and authorization.lower().startswith("basic "):
        login = _basic(authorization)
        if login is None or not store.check_login(*login):
            raise Denied(401, "wrong customer login")
        return Caller("customer", login[0], customer=login[0], meters=meters_of(login[0], now))
    raise Denied(401, "give an X-API-Key, a Bearer token or a customer's Basic login")
