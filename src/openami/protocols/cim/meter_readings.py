"""MeterReadings documents (IEC 61968-9 shaped): register and interval reads of meters.

One ``MeterReading`` is one meter's reads: register values (``readings``: a value at a moment)
and interval blocks (``interval_blocks``: one reading type, a run of interval values, each
stamped with the END of its interval). Every value refers to a reading type by its 18-field
mRID (see ``reading_type``); the document may describe those reading types once at its end.
Values are whole units of their reading type: Wh for openami's energy reads.

Quality codes (``3.8.0``: estimated by the MDM) travel with each value that has any; a value
without one is a plain, valid read.

Left out of 61968-9's MeterReadings, because openami's Route C does not need them yet:
isCoincidentTrigger, valuesInterval, reportedDateTime, source and timePeriod of a reading,
PendingCalculation, CustomerAgreement, EndDeviceEvents inside a MeterReading, a
ReadingQuality's comment, source and timeStamp, and ReadingType's spelled-out attributes
(the mRID carries them all).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

from openami.errors import DecodeError
from openami.protocols.cim import _xml
from openami.protocols.cim._xml import QUALITY_CODE, READING_TYPE_CODE

__all__ = [
    "NAMESPACE",
    "IntervalBlock",
    "IntervalReading",
    "Meter",
    "MeterReading",
    "MeterReadings",
    "Reading",
    "ReadingType",
    "UsagePoint",
    "decode_meter_readings",
    "encode_meter_readings",
]

NAMESPACE = "http://openami.org/cim/2026/MeterReadings#"
ET.register_namespace("mr", NAMESPACE)  # the prefix written for it (a process-wide table)


@dataclass(frozen=True, slots=True)
class Meter:
    mrid: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class UsagePoint:
    mrid: str


@dataclass(frozen=True, slots=True)
class Reading:
    """A register value at ``time_stamp``."""

    reading_type: str  # a ReadingTypeId mrid
    time_stamp: datetime
    value: int
    qualities: tuple[str, ...] = ()  # quality codes, "system.category.index"


@dataclass(frozen=True, slots=True)
class IntervalReading:
    time_stamp: datetime  # the END of the interval
    value: int
    qualities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IntervalBlock:
    reading_type: str
    readings: tuple[IntervalReading, ...] = ()


@dataclass(frozen=True, slots=True)
class MeterReading:
    meter: Meter
    usage_point: UsagePoint | None = None
    mrid: str | None = None
    readings: tuple[Reading, ...] = ()
    interval_blocks: tuple[IntervalBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class ReadingType:
    mrid: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class MeterReadings:
    meter_readings: tuple[MeterReading, ...] = ()
    reading_types: tuple[ReadingType, ...] = ()


def _q(name: str) -> str:
    return _xml.qname(NAMESPACE, name)


# --- encoding ------------------------------------------------------------------------------


def encode_meter_readings(document: MeterReadings) -> bytes:
    """The XML of ``document``; ``LocalProtocolError`` if it holds something the schema does
    not allow (a naive time, an ill-formed code, text XML cannot carry)."""
    root = _xml.element(None, NAMESPACE, "MeterReadings")
    for reading in document.meter_readings:
        _encode_meter_reading(root, reading)
    for reading_type in document.reading_types:
        node = _xml.element(root, NAMESPACE, "ReadingType")
        _xml.write_code(
            node, NAMESPACE, "mRID", reading_type.mrid, READING_TYPE_CODE, "ReadingType mRID"
        )
        _encode_name(node, reading_type.name, "ReadingType name")
    return _xml.serialize(root)


def _encode_name(parent: ET.Element, name: str | None, what: str) -> None:
    if name is not None:
        _xml.write_text(_xml.element(parent, NAMESPACE, "Names"), NAMESPACE, "name", name, what)


def _encode_qualities(parent: ET.Element, qualities: tuple[str, ...]) -> None:
    for quality in qualities:
        node = _xml.element(parent, NAMESPACE, "ReadingQualities")
        _xml.write_ref(node, NAMESPACE, "ReadingQualityType", quality, QUALITY_CODE, "quality")


def _encode_meter_reading(root: ET.Element, reading: MeterReading) -> None:
    node = _xml.element(root, NAMESPACE, "MeterReading")
    if reading.mrid is not None:
        _xml.write_identifier(node, NAMESPACE, "mRID", reading.mrid, "MeterReading mRID")
    for block in reading.interval_blocks:
        block_node = _xml.element(node, NAMESPACE, "IntervalBlocks")
        for interval in block.readings:
            item = _xml.element(block_node, NAMESPACE, "IntervalReadings")
            _xml.write_time(item, NAMESPACE, "timeStamp", interval.time_stamp, "timeStamp")
            _xml.write_int(item, NAMESPACE, "value", interval.value, "interval value")
            _encode_qualities(item, interval.qualities)
        _xml.write_ref(
            block_node,
            NAMESPACE,
            "ReadingType",
            block.reading_type,
            READING_TYPE_CODE,
            "IntervalBlock ReadingType",
        )
    meter = _xml.element(node, NAMESPACE, "Meter")
    _xml.write_identifier(meter, NAMESPACE, "mRID", reading.meter.mrid, "Meter mRID")
    _encode_name(meter, reading.meter.name, "Meter name")
    for register in reading.readings:
        item = _xml.element(node, NAMESPACE, "Readings")
        _xml.write_time(item, NAMESPACE, "timeStamp", register.time_stamp, "timeStamp")
        _xml.write_int(item, NAMESPACE, "value", register.value, "reading value")
        _encode_qualities(item, register.qualities)
        _xml.write_ref(
            item,
            NAMESPACE,
            "ReadingType",
            register.reading_type,
            READING_TYPE_CODE,
            "Reading ReadingType",
        )
    if reading.usage_point is not None:
        point = _xml.element(node, NAMESPACE, "UsagePoint")
        _xml.write_identifier(point, NAMESPACE, "mRID", reading.usage_point.mrid, "UsagePoint")


# --- decoding ------------------------------------------------------------------------------


def decode_meter_readings(document: bytes) -> MeterReadings:
    """The model of a MeterReadings document; ``DecodeError`` for anything else."""
    root = _xml.parse(document)
    if root.tag != _q("MeterReadings"):
        raise DecodeError(f"not a MeterReadings document: the root is {root.tag[:80]!r}")
    children = _xml.Children(root, "MeterReadings")
    readings = tuple(_decode_meter_reading(node) for node in children.repeated(_q("MeterReading")))
    types = tuple(_decode_reading_type(node) for node in children.repeated(_q("ReadingType")))
    children.done()
    return MeterReadings(readings, types)


def _decode_name(node: ET.Element | None, what: str) -> str | None:
    if node is None:
        return None
    children = _xml.Children(node, what)
    name = _xml.read_text(children.required(_q("name")), what)
    children.done()
    return name


def _decode_qualities(children: _xml.Children) -> tuple[str, ...]:
    qualities = []
    for node in children.repeated(_q("ReadingQualities")):
        inner = _xml.Children(node, "ReadingQualities")
        ref = inner.required(_q("ReadingQualityType"))
        qualities.append(_xml.read_ref(ref, QUALITY_CODE, "ReadingQualityType"))
        inner.done()
    return tuple(qualities)


def _decode_reading_type(node: ET.Element) -> ReadingType:
    children = _xml.Children(node, "ReadingType")
    mrid = _xml.read_code(children.required(_q("mRID")), READING_TYPE_CODE, "ReadingType mRID")
    name = _decode_name(children.optional(_q("Names")), "ReadingType Names")
    children.done()
    return ReadingType(mrid, name)


def _decode_interval_block(node: ET.Element) -> IntervalBlock:
    children = _xml.Children(node, "IntervalBlocks")
    readings = []
    for item in children.repeated(_q("IntervalReadings")):
        inner = _xml.Children(item, "IntervalReadings")
        time_stamp = _xml.read_time(inner.required(_q("timeStamp")), "IntervalReading timeStamp")
        value = _xml.read_int(inner.required(_q("value")), "IntervalReading value")
        qualities = _decode_qualities(inner)
        inner.done()
        readings.append(IntervalReading(time_stamp, value, qualities))
    ref = children.required(_q("ReadingType"))
    children.done()
    return IntervalBlock(_xml.read_ref(ref, READING_TYPE_CODE, "ReadingType"), tuple(readings))


def _decode_reading(node: ET.Element) -> Reading:
    children = _xml.Children(node, "Readings")
    time_stamp = _xml.read_time(children.required(_q("timeStamp")), "Reading timeStamp")
    value = _xml.read_int(children.required(_q("value")), "Reading value")
    qualities = _decode_qualities(children)
    ref = _xml.read_ref(children.required(_q("ReadingType")), READING_TYPE_CODE, "ReadingType")
    children.done()
    return Reading(ref, time_stamp, value, qualities)


def _decode_meter_reading(node: ET.Element) -> MeterReading:
    children = _xml.Children(node, "MeterReading")
    mrid_node = children.optional(_q("mRID"))
    mrid = None if mrid_node is None else _xml.read_identifier(mrid_node, "MeterReading mRID")
    blocks = tuple(_decode_interval_block(n) for n in children.repeated(_q("IntervalBlocks")))
    meter_node = _xml.Children(children.required(_q("Meter")), "Meter")
    meter = Meter(
        _xml.read_identifier(meter_node.required(_q("mRID")), "Meter mRID"),
        _decode_name(meter_node.optional(_q("Names")), "Meter Names"),
    )
    meter_node.done()
    readings = tuple(_decode_reading(n) for n in children.repeated(_q("Readings")))
    point_node = children.optional(_q("UsagePoint"))
    point = None
    if point_node is not None:
        point_children = _xml.Children(point_node, "UsagePoint")
        point = UsagePoint(_xml.read_identifier(point_children.required(_q("mRID")), "UsagePoint"))
        point_children.done()
    children.done()
    return MeterReading(meter, point, mrid, readings, blocks)
