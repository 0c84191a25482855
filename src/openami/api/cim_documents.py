"""The MDMS's reads and events as CIM documents (``protocols/cim`` encodes; this module only
picks the data): MeterReadings with one interval block per channel, each read stamped at
its interval's end with its quality codes; EndDeviceEvents from the meters' events."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from openami.protocols.cim import (
    EndDeviceEvents,
    IntervalBlock,
    IntervalReading,
    Meter,
    MeterReading,
    MeterReadings,
    ReadingType,
    encode_end_device_events,
    encode_meter_readings,
    event_from_dlms,
    interval_energy,
)
from openami.protocols.cim.reading_type import FlowDirection
from openami.protocols.dlms.notification import EventCode

__all__ = ["end_device_events_xml", "meter_readings_xml"]

_TYPES = {
    1: interval_energy(30, FlowDirection.FORWARD),
    2: interval_energy(30, FlowDirection.REVERSE),
}


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def meter_readings_xml(rows: pl.DataFrame) -> bytes:
    """``rows`` as ``DataSource.interval_reads`` gives them (missing values left out)."""
    present = rows.filter(pl.col("value_wh").is_not_null())
    readings = []
    for (meter,), group in present.group_by("meter_id", maintain_order=True):
        blocks = []
        for channel, kind in _TYPES.items():
            mine = group.filter(pl.col("channel") == channel)
            if mine.height:
                blocks.append(
                    IntervalBlock(
                        reading_type=kind.mrid,
                        readings=tuple(
                            IntervalReading(_at(int(end)), int(value), tuple(quality))
                            for end, value, quality in mine.select(
                                "interval_end", "value_wh", "quality"
                            ).iter_rows()
                        ),
                    )
                )
        readings.append(MeterReading(meter=Meter(str(meter)), interval_blocks=tuple(blocks)))
    types = tuple(
        ReadingType(k.mrid, f"30-minute energy, {n}")
        for n, k in (("import", _TYPES[1]), ("export", _TYPES[2]))
    )
    return encode_meter_readings(MeterReadings(tuple(readings), types))


def end_device_events_xml(rows: pl.DataFrame) -> bytes:
    """Events (``meter_id``, ``time``, ``code``, ``value``) the CIM tables know."""
    events = []
    for meter, time, code, value in rows.select("meter_id", "time", "code", "value").iter_rows():
        try:
            kind = EventCode(int(code))
        except ValueError:
            continue  # a code the meter sent that openami does not know: not in CIM
        events.append(
            event_from_dlms(f"{meter}-{time}-{code}", _at(int(time)), kind, int(value), str(meter))
        )
    return encode_end_device_events(EndDeviceEvents(tuple(events)))
