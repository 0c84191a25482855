"""Billing determinants per contract and billing cycle, for Japanese residential plans.

What a bill is computed from, per contract and meter-reading cycle: import per time-of-use
period (tariffs as data, in ``tariffs.toml``; Japanese public holidays from the ``holidays``
package), total import and export, maximum 30-minute demand, CPP/PTR event energy, and
whether the cycle is bill-ready (every interval present and passed VEE).

Typical use, one partition at a time (in-process or as Dask tasks)::

    book = load_tariffs()
    month = BillingMonth(2024, 8)
    calendar = BillingCalendar.for_month(book, month)
    reads = load_interval_reads(lake, *calendar.span, shard=(i, 16))
    part = accumulate(reads, contracts, calendar, events)
    determinants = finalize(merge_partials(parts), contracts, calendar)
"""

from openami.mdm.billing.calendar import (
    INTERVAL_S,
    BillingCalendar,
    BillingError,
    BillingMonth,
    holiday_dates,
)
from openami.mdm.billing.determinants import (
    Partials,
    accumulate,
    billing_determinants,
    finalize,
    merge_partials,
    periods_long,
)
from openami.mdm.billing.frames import (
    CONTRACT_COLUMNS,
    EVENT_COLUMNS,
    READ_COLUMNS,
    empty_events,
    events_from_windows,
)
from openami.mdm.billing.lake_reads import DEFAULT_INVALID_STATUS, load_interval_reads
from openami.mdm.billing.tariff import (
    DayKind,
    Rule,
    Tariff,
    TariffBook,
    load_tariffs,
    parse_tariffs,
)
from openami.mdm.billing.validated_reads import load_validated_reads

__all__ = [
    "CONTRACT_COLUMNS",
    "DEFAULT_INVALID_STATUS",
    "EVENT_COLUMNS",
    "INTERVAL_S",
    "READ_COLUMNS",
    "BillingCalendar",
    "BillingError",
    "BillingMonth",
    "DayKind",
    "Partials",
    "Rule",
    "Tariff",
    "TariffBook",
    "accumulate",
    "billing_determinants",
    "empty_events",
    "events_from_windows",
    "finalize",
    "holiday_dates",
    "load_interval_reads",
    "load_tariffs",
    "load_validated_reads",
    "merge_partials",
    "parse_tariffs",
    "periods_long",
]
