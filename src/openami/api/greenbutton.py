"""Green Button documents of the MDMS's data: the validated reads of some meters over a span,
as ESPI usage feeds (``protocols/espi`` renders; this module only picks the data).

One usage point per meter, with two meter readings (import: flow forward; export: flow
reverse), daily blocks in Japan time, and each reading's quality when VEE found something
(estimated, edited, questionable); a plain valid read carries no quality element. A missing
interval is left out of its block, as ESPI has no "missing" value.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import polars as pl

from openami.api.data import DataSource
from openami.protocols.espi import (
    IntervalReading,
    LocalTimeParameters,
    MeterReadingInfo,
    ReadingTypeInfo,
    UsagePointInfo,
    daily_blocks,
    usage_feed,
)

__all__ = ["LOCAL_TIME", "READING_TYPES", "meter_readings", "usage_document", "usage_point"]

INTERVAL_S = 1800
VALID_ESPI = 17  # "validated": said by leaving the quality out
_FLOWS = {1: ("import", 1), 2: ("export", 19)}  # channel: (name, ESPI flow direction)
ATOM = "http://www.w3.org/2005/Atom"


def _readings(rows: pl.DataFrame) -> list[IntervalReading]:
    present = rows.filter(pl.col("value_wh").is_not_null())
    return [
        IntervalReading(
            start=int(end) - INTERVAL_S,
            duration=INTERVAL_S,
            value=int(value),
            quality=None if int(quality) == VALID_ESPI else int(quality),
        )
        for end, value, quality in present.select(
            "interval_end", "value_wh", "espi_quality"
        ).iter_rows()
    ]


READING_TYPES = {
    name: ReadingTypeInfo(id=f"wh-30min-{name}", flow_direction=flow, title=name)
    for name, flow in _FLOWS.values()
}
LOCAL_TIME = LocalTimeParameters(id="jst")


def usage_point(meter: int) -> UsagePointInfo:
    return UsagePointInfo(id=str(meter), title=f"Meter {meter}")


def meter_readings(
    data: DataSource, meter: int, start: datetime, end: datetime
) -> list[MeterReadingInfo]:
    """The meter's two meter readings (import, export) with their daily blocks of reads
    ending in (start, end]."""
    rows = data.interval_reads([meter], start, end)
    readings = []
    for channel, (name, _flow) in _FLOWS.items():
        series = _readings(rows.filter(pl.col("channel") == channel))
        readings.append(
            MeterReadingInfo(
                id=f"{meter}-{name}",
                title=f"Meter {meter} {name}",
                reading_type=READING_TYPES[name],
                blocks=daily_blocks(series),
            )
        )
    return readings


def _one_meter(
    data: DataSource, meter: int, start: datetime, end: datetime, subscription: str, base: str
) -> bytes:
    now = datetime.now(UTC)
    readings = meter_readings(data, meter, start, end)
    return usage_feed(
        subscription_id=subscription,
        usage_point=usage_point(meter),
        local_time=LOCAL_TIME,
        meter_readings=readings,
        published=now,
        updated=now,
        base_url=base,
    )


def usage_document(
    data: DataSource,
    meters: list[int],
    start: datetime,
    end: datetime,
    subscription: str,
    base: str = "",
) -> bytes:
    """One Atom feed with every meter's usage point and reads (the entries of the
    per-meter feeds together; the local time parameters and reading types once)."""
    feeds = [_one_meter(data, m, start, end, subscription, base) for m in sorted(meters)]
    if len(feeds) == 1:
        return feeds[0]
    ET.register_namespace("", ATOM)
    ET.register_namespace("espi", "http://naesb.org/espi")
    first = ET.fromstring(feeds[0])  # noqa: S314 -- our own rendering, not input
    seen = {e.findtext(f"{{{ATOM}}}id") for e in first.iter(f"{{{ATOM}}}entry")}
    for feed in feeds[1:]:
        for entry in ET.fromstring(feed).iter(f"{{{ATOM}}}entry"):  # noqa: S314
            key = entry.findtext(f"{{{ATOM}}}id")
            if key not in seen:
                seen.add(key)
                first.append(entry)
    return bytes(ET.tostring(first, encoding="utf-8", xml_declaration=True))
