"""The timeline rules, as pure functions over records (no database): the repository loads
the rows a change touches, applies the change in memory, and asks these before writing.

Kept apart from the SQL so the rules read as what they are and the property tests can aim
at them through the repository on both backends alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from itertools import pairwise
from typing import Protocol, TypeVar

from openami.errors import RegistryError
from openami.mdm.registry.model import CustomerAgreement, stamp

__all__ = ["check_contracts", "check_history", "clip"]


class _Span(Protocol):
    @property
    def valid_from(self) -> datetime: ...
    @property
    def valid_to(self) -> datetime | None: ...


S = TypeVar("S", bound=_Span)


def check_history(spans: Iterable[S], name: Callable[[S], str], subject: str) -> None:
    """Spans of one subject (one meter's units, installations or links) never overlap."""
    ordered = sorted(spans, key=lambda s: s.valid_from)
    for a, b in pairwise(ordered):
        if a.valid_to is None or a.valid_to > b.valid_from:
            raise RegistryError(
                f"{subject}: {name(a)} ({stamp(a.valid_from)} to {stamp(a.valid_to)}) "
                f"overlaps {name(b)} (from {stamp(b.valid_from)})"
            )


def check_contracts(
    usage_point: str,
    contracts: Iterable[CustomerAgreement],
    changed: set[str],
    *,
    allow_gap: bool,
) -> None:
    """The contracts of ``usage_point`` as they would be after a change (``changed``: the
    mRIDs added or altered) must not overlap anywhere, and must leave no gap next to a
    changed contract unless ``allow_gap`` (a vacant premise between two tenants, say).

    Gaps elsewhere in the history were allowed when they were made and are not re-judged.
    """
    ordered = sorted(contracts, key=lambda c: c.valid_from)
    for a, b in pairwise(ordered):
        if a.valid_to is None or a.valid_to > b.valid_from:
            raise RegistryError(
                f"usage point {usage_point}: contract {a.mrid} ({stamp(a.valid_from)} to "
                f"{stamp(a.valid_to)}) overlaps contract {b.mrid} (from {stamp(b.valid_from)})"
            )
        if a.valid_to < b.valid_from and not allow_gap and {a.mrid, b.mrid} & changed:
            raise RegistryError(
                f"usage point {usage_point}: no contract from {stamp(a.valid_to)} "
                f"(end of {a.mrid}) to {stamp(b.valid_from)} (start of {b.mrid}); "
                "allow the gap if the premise is really without a contract"
            )


def clip(spans: Sequence[S], start: datetime, end: datetime) -> list[tuple[S, datetime, datetime]]:
    """Each span's part within ``[start, end)``, in order, empty parts left out."""
    out = []
    for span in sorted(spans, key=lambda s: s.valid_from):
        lo = max(span.valid_from, start)
        hi = end if span.valid_to is None else min(span.valid_to, end)
        if lo < hi:
            out.append((span, lo, hi))
    return out
