"""What every bus backend promises, and the subject rules they share.

The head-end and the MDMS are written against these protocols, not against one backend, so
that the single-process default (``MemoryBus``) and the production backend (``JetStreamBus``)
are interchangeable and are held to one contract test suite.

The promises:

- ``publish`` queues a message and returns at once; it never waits for the bus per message,
  because a head-end publishes thousands of batches a second.
- ``flush`` returns only when every message published so far is stored by the bus, and raises
  ``BusError`` naming how many were not: this is the point where a head-end may forget data.
- A subscription delivers at least once: a message fetched and neither acknowledged nor given
  back is delivered again (at once after ``nak``, after the ack wait or a restart otherwise).
- A durable subscription (a name) resumes where it left off when it is opened again.

Subjects follow NATS: dot-separated tokens; in a subscription ``*`` matches one token and
``>`` (last only) one or more. Publish subjects carry no wildcards.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Protocol, Self

from openami.errors import BusError

__all__ = [
    "Bus",
    "BusMessage",
    "BusSubscription",
    "check_durable",
    "check_pattern",
    "check_subject",
    "subject_matches",
]

_FORBIDDEN = frozenset(" \t\r\n")


class BusMessage(Protocol):
    """One delivered message; ``ack`` or ``nak`` it exactly once."""

    @property
    def subject(self) -> str: ...

    @property
    def data(self) -> bytes: ...

    @property
    def sequence(self) -> int:
        """The bus's number for this message: grows in publish order on one subject."""
        ...

    def ack(self) -> None:
        """Done with it: never deliver it to this subscription again. Twice is a BusError."""
        ...

    def nak(self) -> None:
        """Give it back for redelivery at once (no-op once acknowledged or given back)."""
        ...


class BusSubscription(Protocol):
    @property
    def subject(self) -> str: ...

    def fetch(self, limit: int = 1_000, timeout: float = 0.0) -> Sequence[BusMessage]:
        """Up to ``limit`` messages in order; wait up to ``timeout`` s for the first one."""
        ...

    def pending(self) -> int:
        """Messages not yet acknowledged: waiting plus fetched-but-unacknowledged."""
        ...


class Bus(Protocol):
    def publish(self, subject: str, data: bytes) -> int:
        """Queue ``data`` on ``subject``; return this bus object's number for it."""
        ...

    def flush(self, timeout: float = 10.0) -> None:
        """Return once everything published so far is stored; else raise BusError."""
        ...

    def subscribe(self, subject: str, durable: str | None = None) -> BusSubscription:
        """Messages published on ``subject`` (wildcards allowed) from now on; a ``durable``
        name resumes that subscription where it left off."""
        ...

    def close(self) -> None:
        """Release the bus; publishing afterwards raises BusError. Closing twice is fine."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def _tokens(subject: str, what: str) -> list[str]:
    if not subject or any(c in _FORBIDDEN for c in subject):
        raise BusError(f"{what} {subject!r} is empty or holds white space")
    tokens = subject.split(".")
    if "" in tokens:
        raise BusError(f"{what} {subject!r} has an empty token")
    return tokens


def check_subject(subject: str) -> str:
    """``subject`` if it is a valid subject to publish on (no wildcards), else BusError."""
    for part in _tokens(subject, "subject"):
        if "*" in part or ">" in part:
            raise BusError(f"cannot publish on {subject!r}: wildcards are for subscriptions")
    return subject


def check_pattern(pattern: str) -> str:
    """``pattern`` if it is a valid subscription subject, else BusError.

    A wildcard must be a whole token (NATS would take ``a*`` literally, which is never what
    was meant), and ``>`` can only be the last token.
    """
    tokens = _tokens(pattern, "subscription subject")
    for i, part in enumerate(tokens):
        if part in ("*", ">"):
            if part == ">" and i != len(tokens) - 1:
                raise BusError(f"subscription subject {pattern!r}: '>' must be the last token")
        elif "*" in part or ">" in part:
            raise BusError(f"subscription subject {pattern!r}: a wildcard must be a whole token")
    return pattern


def check_durable(name: str) -> str:
    """``name`` if it can name a durable subscription (JetStream's rules), else BusError."""
    if not name or any(c in _FORBIDDEN or c in ".*>/\\" for c in name):
        raise BusError(f"durable name {name!r} is empty or holds one of . * > / \\ or space")
    return name


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether ``subject`` (a publish subject) falls under ``pattern`` (a valid pattern)."""
    if "*" not in pattern and ">" not in pattern:
        return pattern == subject
    want = pattern.split(".")
    have = subject.split(".")
    for i, part in enumerate(want):
        if part == ">":
            return len(have) > i
        if i >= len(have) or (part != "*" and part != have[i]):
            return False
    return len(want) == len(have)
