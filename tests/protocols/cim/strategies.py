"""Hypothesis strategies for CIM models: every model they draw is one the encoder accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import TypeVar

from hypothesis import strategies as st

from openami.protocols import cim

# Any character XML 1.0 can carry back unchanged: no C0 controls but tab and line feed (so no
# carriage return), no surrogates, and not U+FFFE/U+FFFF.
_CHARS = st.characters(
    exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff"
) | st.sampled_from("\t\n")
texts = st.text(_CHARS, max_size=12)
# drawn without whitespace rather than filtered (a filter threw half the draws away, and
# Hypothesis's health check failed on a loaded machine)
identifiers = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Zs"), exclude_characters="\ufffe\uffff"),
    min_size=1,
    max_size=12,
)

# Times in any fixed offset (written as UTC) and with or without microseconds.
times = st.datetimes(
    min_value=datetime(1, 1, 2),  # noqa: DTZ001 - bounds of a strategy of aware times
    max_value=datetime(9999, 12, 30),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=9)), timezone(timedelta(hours=-5))]),
)
int64s = st.integers(-(2**63), 2**63 - 1)
_parts = st.integers(0, 999_999_999)


def _code(count: int, signed: bool = False) -> st.SearchStrategy[str]:
    part = st.integers(-999_999_999, 999_999_999) if signed else _parts
    return st.lists(part, min_size=count, max_size=count).map(lambda p: ".".join(map(str, p)))


reading_type_codes = st.one_of(
    st.sampled_from([cim.interval_energy(m).mrid for m in (60, 30, 15, 5)]),
    st.sampled_from([cim.BULK_FORWARD_WH.mrid, cim.BULK_REVERSE_WH.mrid]),
    _code(18, signed=True),
)
quality_codes = st.one_of(st.sampled_from(["1.0.0", "3.8.0", "3.7.0"]), _code(3))
end_device_codes = st.one_of(
    st.sampled_from([c.code.code for c in cim.EVENT_TYPES.values()]),
    st.sampled_from([c.code.code for c in cim.CONTROL_TYPES.values()]),
    _code(4),
)
T = TypeVar("T")


def few(elements: st.SearchStrategy[T], min_size: int = 0) -> st.SearchStrategy[tuple[T, ...]]:
    return st.lists(elements, min_size=min_size, max_size=3).map(tuple)


interval_readings = st.builds(cim.IntervalReading, times, int64s, few(quality_codes))
readings = st.builds(cim.Reading, reading_type_codes, times, int64s, few(quality_codes))
interval_blocks = st.builds(cim.IntervalBlock, reading_type_codes, few(interval_readings))
meter_reading = st.builds(
    cim.MeterReading,
    st.builds(cim.Meter, identifiers, st.none() | texts),
    st.none() | st.builds(cim.UsagePoint, identifiers),
    st.none() | identifiers,
    few(readings),
    few(interval_blocks),
)
meter_readings = st.builds(
    cim.MeterReadings,
    few(meter_reading),
    few(st.builds(cim.ReadingType, reading_type_codes, st.none() | texts)),
)

end_device_events = st.builds(
    cim.EndDeviceEvents,
    few(
        st.builds(
            cim.EndDeviceEvent,
            identifiers,
            times,
            end_device_codes,
            identifiers,
            st.none() | identifiers,
            few(st.builds(cim.EndDeviceEventDetail, identifiers, texts)),
            st.none() | texts,
        )
    ),
)

headers = st.builds(
    cim.Header, st.sampled_from(cim.Verb), times, texts, identifiers, st.none() | identifiers
)
end_device_controls = st.builds(
    cim.EndDeviceControls,
    few(
        st.builds(
            cim.EndDeviceControl,
            identifiers,
            end_device_codes,
            few(identifiers, min_size=1),
            st.none() | st.builds(cim.DateTimeInterval, st.none() | times, st.none() | times),
            st.none() | texts,
            few(st.builds(cim.EndDeviceControlDetail, identifiers, texts)),
        ),
        min_size=1,
    ),
)
request_messages = st.builds(cim.RequestMessage, headers, end_device_controls)
replies = st.builds(
    cim.Reply,
    st.sampled_from(cim.Result),
    few(st.builds(cim.ReplyError, identifiers, st.none() | texts, st.none() | identifiers)),
)
response_messages = st.builds(
    cim.ResponseMessage, headers, replies, st.none() | end_device_controls
)
