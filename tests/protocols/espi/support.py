"""Sample values, strategies and the two independent Green Button readers the tests use.

The readers turn a rendered document back into the package's own values so a test can
compare them with what was rendered, ``==`` on frozen dataclasses:

* ``XsdataReader``: classes that xsdata generates from the ESPI schema at test time (into a
  temporary folder, never into the repository), with xsdata's own XML parser;
* ``read_with_greenbutton``: greenbutton-objects' ``parse_feed``, which walks the Atom links
  itself (usage point -> meter readings -> reading type and interval blocks).

Neither uses openami's paths or renderer: relations are followed by matching hrefs, ids are
the last path segment of each entry's self link.
"""

from __future__ import annotations

import enum
import importlib
import io
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import strategies as st

from openami.protocols.espi import (
    FlowDirection,
    IntervalBlock,
    IntervalReading,
    LocalTimeParameters,
    MeterReadingInfo,
    QualityOfReading,
    ReadingTypeInfo,
    UsagePointInfo,
    daily_blocks,
)
from openami.protocols.espi.schema import default_schema_path

JST = timezone(timedelta(hours=9))
PUBLISHED = datetime(2025, 4, 1, 9, 0, tzinfo=JST)
UPDATED = datetime(2025, 4, 6, 2, 30, 15, tzinfo=JST)
APRIL_1 = 1743433200  # 2025-04-01 00:00 JST in Unix seconds
HALF_HOUR = 1800
SUBSCRIPTION = "5"
BASE_URL = "https://dc.example.jp/DataCustodian"

SCHEMA = default_schema_path()
requires_schema = pytest.mark.skipif(
    not SCHEMA.is_file(),
    reason=f"the Green Button schemas (test data, not part of openami) are not at {SCHEMA}",
)


@dataclass(frozen=True)
class Usage:
    """What a Download My Data feed is rendered from (and what a reader gives back)."""

    usage_point: UsagePointInfo
    local_time: LocalTimeParameters | None
    meter_readings: tuple[MeterReadingInfo, ...]


def import_type(**changes: Any) -> ReadingTypeInfo:
    return ReadingTypeInfo(
        **{"id": "rt-import", "flow_direction": FlowDirection.FORWARD, "title": "Import", **changes}
    )


def export_type(**changes: Any) -> ReadingTypeInfo:
    return ReadingTypeInfo(
        **{"id": "rt-export", "flow_direction": FlowDirection.REVERSE, "title": "Export", **changes}
    )


def _sample_import() -> list[IntervalReading]:
    readings = []
    for day in (0, 1, 3):  # 2025-04-03 is missing altogether
        for slot in range(48):
            if day == 1 and slot in (10, 11, 12):
                continue  # a gap VEE could not fill
            quality = {(1, 5): 8, (1, 6): 7, (1, 20): 10, (3, 47): 9}.get((day, slot))
            start = APRIL_1 + day * 86400 + slot * HALF_HOUR
            readings.append(IntervalReading(start, HALF_HOUR, 150 + 7 * slot + day, quality))
    return readings


def _sample_export() -> list[IntervalReading]:
    return [
        IntervalReading(
            APRIL_1 + day * 86400 + slot * HALF_HOUR,
            HALF_HOUR,
            max(0, 400 - abs(slot - 24) * 30),
            None,
        )
        for day in (0, 1)
        for slot in range(48)
    ]


def sample_usage() -> Usage:
    """A usage point with import over three of four days (one gap, a few estimated and
    edited reads) and export over two days."""
    return Usage(
        UsagePointInfo("up-1", "Home, Chiyoda-ku", status=1),
        LocalTimeParameters("jst"),
        (
            MeterReadingInfo("import", "Import", import_type(), daily_blocks(_sample_import())),
            MeterReadingInfo("export", "Export", export_type(), daily_blocks(_sample_export())),
        ),
    )


# Quality codes greenbutton-objects knows (its enumeration stops at 18, verified).
GREENBUTTON_QUALITIES = [q for q in QualityOfReading if q != QualityOfReading.REVENUE_QUALITY]


@st.composite
def interval_series(
    draw: st.DrawFn, qualities: st.SearchStrategy[int | None]
) -> tuple[IntervalReading, ...]:
    """Half-hourly readings over one to three local days, with gaps, any Int48 value."""
    days = draw(st.integers(1, 3))
    first_day = draw(st.integers(0, 20_000))  # days after 1970-01-01 (JST)
    present = draw(st.lists(st.booleans(), min_size=48 * days, max_size=48 * days))
    if not any(present):
        present[draw(st.integers(0, len(present) - 1))] = True
    readings = []
    for slot, here in enumerate(present):
        if here:
            readings.append(
                IntervalReading(
                    first_day * 86400 - 9 * 3600 + slot * HALF_HOUR,
                    HALF_HOUR,
                    draw(st.integers(-(2**47), 2**47)),
                    draw(qualities),
                )
            )
    return tuple(readings)


def parse_xml(document: bytes) -> ET.Element:
    """A document the tests rendered themselves, parsed with the standard library."""
    return ET.fromstring(document)  # noqa: S314 - our own output, not untrusted input


def _segment(href: str) -> str:
    return href.rsplit("/", 1)[1]


def _number(value: Any) -> Any:
    """xsdata gives enumerated codes as Enum members and other union members as ints."""
    return value.value if isinstance(value, enum.Enum) else value


class XsdataReader:
    """Classes generated by ``xsdata generate`` from the ESPI schema, and a reader on them."""

    PACKAGE = "espi_xsdata_peer"

    def __init__(self, into: Path) -> None:
        env = dict(os.environ)
        # xsdata formats what it writes with ruff, found on PATH: the venv's own.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        done = subprocess.run(
            [sys.executable, "-m", "xsdata", "generate", str(SCHEMA), "--package", self.PACKAGE],
            cwd=into,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        self._path = str(into)
        sys.path.insert(0, self._path)
        self.atom = importlib.import_module(f"{self.PACKAGE}.atom")
        self.espi = importlib.import_module(f"{self.PACKAGE}.espi_usage_3_3")
        from xsdata.formats.dataclass.parsers import XmlParser

        self.parser = XmlParser()

    def close(self) -> None:
        sys.path.remove(self._path)
        for name in [n for n in sys.modules if n.split(".")[0] == self.PACKAGE]:
            del sys.modules[name]

    def entries(self, document: bytes) -> list[Any]:
        """The entries of a feed document (or the one entry of an entry document)."""
        if b"<feed" in document[:200]:
            return list(self.parser.from_bytes(document, self.atom.Feed).entry)
        return [self.parser.from_bytes(document, self.atom.Entry)]

    @staticmethod
    def body(entry: Any) -> Any:
        (content,) = entry.content
        (resource,) = [c for c in content.content if not isinstance(c, str)]
        return resource

    @staticmethod
    def title(entry: Any) -> str:
        (title,) = entry.title
        return "".join(str(part) for part in title.content)

    @staticmethod
    def links(entry: Any, rel: str) -> list[str]:
        return [link.href for link in entry.link if link.rel == rel]

    def read_usage(self, document: bytes) -> Usage:
        entries = self.entries(document)
        by_self = {self.links(e, "self")[0]: e for e in entries}
        points = [e for e in entries if isinstance(self.body(e), self.espi.UsagePoint)]
        (point_entry,) = points
        related = self.links(point_entry, "related")
        local_time = next((self.local_time(by_self[h]) for h in related if h in by_self), None)
        readings = [
            self.meter_reading(e, entries)
            for e in entries
            if isinstance(self.body(e), self.espi.MeterReading)
            and self.links(e, "up")[0] in related
        ]
        point = self.body(point_entry)
        return Usage(
            UsagePointInfo(
                _segment(self.links(point_entry, "self")[0]),
                self.title(point_entry),
                kind=_number(point.service_category.kind),
                status=point.status,
            ),
            local_time,
            tuple(sorted(readings, key=lambda m: m.id)),
        )

    def local_time(self, entry: Any) -> LocalTimeParameters:
        body = self.body(entry)
        assert isinstance(body, self.espi.LocalTimeParameters)
        return LocalTimeParameters(
            _segment(self.links(entry, "self")[0]),
            self.title(entry),
            tz_offset=body.tz_offset,
            dst_offset=body.dst_offset,
            dst_start_rule=int.from_bytes(body.dst_start_rule, "big"),
            dst_end_rule=int.from_bytes(body.dst_end_rule, "big"),
        )

    def reading_type(self, entry: Any) -> ReadingTypeInfo:
        body = self.body(entry)
        return ReadingTypeInfo(
            _segment(self.links(entry, "self")[0]),
            _number(body.flow_direction),
            self.title(entry),
            interval_length=body.interval_length,
            uom=_number(body.uom),
            power_of_ten_multiplier=_number(body.power_of_ten_multiplier),
            accumulation_behaviour=_number(body.accumulation_behaviour),
            commodity=_number(body.commodity),
            kind=_number(body.kind),
            currency=_number(body.currency),
            default_quality=_number(body.default_quality),
            data_qualifier=_number(body.data_qualifier),
        )

    def interval_block(self, entry: Any) -> IntervalBlock:
        body = self.body(entry)
        readings = []
        for reading in body.interval_reading:
            assert len(reading.reading_quality) <= 1
            quality = (
                _number(reading.reading_quality[0].quality) if reading.reading_quality else None
            )
            readings.append(
                IntervalReading(
                    reading.time_period.start,
                    reading.time_period.duration,
                    reading.value,
                    quality,
                )
            )
        return IntervalBlock(
            _segment(self.links(entry, "self")[0]),
            body.interval.start,
            body.interval.duration,
            tuple(readings),
        )

    def meter_reading(self, entry: Any, entries: list[Any]) -> MeterReadingInfo:
        related = self.links(entry, "related")
        (kind,) = [
            self.reading_type(e)
            for e in entries
            if isinstance(self.body(e), self.espi.ReadingType)
            and self.links(e, "self")[0] in related
        ]
        blocks = [
            self.interval_block(e)
            for e in entries
            if isinstance(self.body(e), self.espi.IntervalBlock)
            and self.links(e, "up")[0] in related
        ]
        return MeterReadingInfo(
            _segment(self.links(entry, "self")[0]),
            self.title(entry),
            kind,
            tuple(sorted(blocks, key=lambda b: b.start)),
        )


def greenbutton_with_jpy() -> tuple[ModuleType, Any]:
    """greenbutton-objects' parser and a currency table that also knows JPY (392).

    Its ``CurrencyCode`` lists only 0, 36, 124, 840 and 978, so ``parse_feed`` refuses a
    reading type in yen (``ValueError: 392 is not a valid CurrencyCode``) although the ESPI
    schema lists it; the caller swaps the table in for the parse (test_peers checks that the
    original still lacks it, so this shim goes when the peer learns yen)."""
    from greenbutton_objects import enums, parse  # type: ignore[import-untyped]

    table = {member.name: member.value for member in enums.CurrencyCode} | {"jpy": 392}
    return parse, enum.Enum("CurrencyCode", table)


def read_with_greenbutton(document: bytes) -> Usage:
    """The usage point and its meter readings as greenbutton-objects sees them (it does not
    read LocalTimeParameters, so ``local_time`` is None)."""
    from greenbutton_objects import enums

    parse, with_jpy = greenbutton_with_jpy()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(enums, "CurrencyCode", with_jpy)
        (point,) = parse.parse_feed(io.BytesIO(document))
    readings = []
    for reading in point.meterReadings:
        rt = reading.readingType
        kind = ReadingTypeInfo(
            _segment(rt.link_self),
            rt.flowDirection.value,
            rt.title or "",
            interval_length=rt.intervalLength,
            uom=rt.uom.value,
            power_of_ten_multiplier=rt.powerOfTenMultiplier,
            accumulation_behaviour=rt.accumulationBehaviour.value,
            commodity=rt.commodity.value,
            kind=rt.kind.value,
            currency=_number(rt.currency),
            default_quality=_number(rt.defaultQuality),
            data_qualifier=_number(rt.dataQualifier),
        )
        blocks = []
        for block in reading.intervalBlocks:
            items = []
            for item in block.intervalReadings:
                qualities = [q.quality.value for q in item.readingQualities]
                assert len(qualities) <= 1
                items.append(
                    IntervalReading(
                        int(item.timePeriod.start.timestamp()),
                        int(item.timePeriod.duration.total_seconds()),
                        item.value,
                        qualities[0] if qualities else None,
                    )
                )
            blocks.append(
                IntervalBlock(
                    _segment(block.link_self),
                    int(block.interval.start.timestamp()),
                    int(block.interval.duration.total_seconds()),
                    tuple(items),
                )
            )
        readings.append(
            MeterReadingInfo(_segment(reading.link_self), reading.title or "", kind, tuple(blocks))
        )
    return Usage(
        UsagePointInfo(
            _segment(point.link_self),
            point.title or "",
            kind=point.serviceCategory.value,
            status=point.status,
        ),
        None,
        tuple(sorted(readings, key=lambda m: m.id)),
    )
