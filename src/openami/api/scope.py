"""Green Button scope strings, and what a consent lets its holder see.

A third party asks for data with an ESPI scope string, for example
``FB=1_3_4_5_13_14_39;IntervalDuration=1800;BlockDuration=daily;HistoryLength=34128000``:
function blocks, the interval length, how the data is blocked and how far back it goes (in
seconds). openami serves 30-minute intervals in daily blocks; a scope asking for another
interval or blocking is refused rather than silently given something else. Function block 4
(interval metering) is needed for interval and register reads. ``HistoryLength`` bounds how
far before the consent the holder may read; the consent ends after ``AuthorizationDuration``
seconds (an openami term, default one year) or when the customer revokes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from openami.errors import ConfigError

__all__ = ["DEFAULT_SCOPE", "Scope"]

INTERVAL_S = 1800
MAX_HISTORY = timedelta(days=3 * 366)
DEFAULT_DURATION = timedelta(days=365)
DEFAULT_SCOPE = "FB=1_3_4_5_13_14;IntervalDuration=1800;BlockDuration=daily;HistoryLength=34128000"


@dataclass(frozen=True)
class Scope:
    function_blocks: frozenset[int]
    history: timedelta
    duration: timedelta
    text: str

    @classmethod
    def parse(cls, text: str) -> Scope:
        """The scope, or ``ConfigError`` naming what is wrong (shown to the third party)."""
        fields: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in text.split(";"))):
            name, sep, value = part.partition("=")
            if not sep or not value:
                raise ConfigError(f"scope term {part!r} is not NAME=VALUE")
            fields[name] = value
        try:
            blocks = frozenset(int(b) for b in fields.get("FB", "").split("_") if b)
            interval = int(fields.get("IntervalDuration", str(INTERVAL_S)))
            history = timedelta(seconds=int(fields.get("HistoryLength", "0")))
            duration = (
                timedelta(seconds=int(fields.get("AuthorizationDuration", "0"))) or DEFAULT_DURATION
            )
        except ValueError:
            raise ConfigError(f"scope {text!r} has a term that is not a number") from None
        if 4 not in blocks:
            raise ConfigError("scope must include function block 4 (interval metering)")
        if interval != INTERVAL_S:
            raise ConfigError(f"IntervalDuration must be {INTERVAL_S}: meters read each 30 min")
        if fields.get("BlockDuration", "daily") != "daily":
            raise ConfigError("BlockDuration must be daily")
        if not timedelta(0) < history <= MAX_HISTORY:
            raise ConfigError(f"HistoryLength must be 1 .. {int(MAX_HISTORY.total_seconds())} s")
        if duration > timedelta(days=3 * 366):
            raise ConfigError("AuthorizationDuration must be at most three years")
        return cls(blocks, history, duration, text)
