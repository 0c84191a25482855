"""Hypothesis: random interval series, with gaps and qualities, render into feeds that
validate, render the same twice, and read back equal through both independent readers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from openami.protocols.espi import (
    IntervalReading,
    LocalTimeParameters,
    MeterReadingInfo,
    UsagePointInfo,
    daily_blocks,
    usage_feed,
    validate,
)
from tests.protocols.espi.support import (
    GREENBUTTON_QUALITIES,
    PUBLISHED,
    UPDATED,
    Usage,
    XsdataReader,
    export_type,
    import_type,
    interval_series,
    read_with_greenbutton,
    requires_schema,
)

# Text an XML document carries intact: no C0 controls but tab and line feed, no surrogates
# or U+FFFE/U+FFFF (the model refuses those, see test_model).
titles = st.text(
    st.characters(codec="utf-8", exclude_characters="\ufffe\uffff\r", min_codepoint=0x09).filter(
        lambda c: c in "\t\n" or ord(c) >= 0x20
    ),
    max_size=40,
)


def usage_of(
    imports: tuple[IntervalReading, ...], exports: tuple[IntervalReading, ...], title: str
) -> Usage:
    return Usage(
        UsagePointInfo("up-1", title, status=1),
        LocalTimeParameters("jst"),
        (
            MeterReadingInfo("export", title, export_type(title=title), daily_blocks(exports)),
            MeterReadingInfo("import", "Import", import_type(), daily_blocks(imports)),
        ),
    )


def render(usage: Usage) -> bytes:
    assert usage.local_time is not None
    return usage_feed(
        subscription_id="5",
        usage_point=usage.usage_point,
        local_time=usage.local_time,
        meter_readings=usage.meter_readings,
        published=PUBLISHED,
        updated=UPDATED,
    )


known_qualities = st.none() | st.sampled_from(GREENBUTTON_QUALITIES)


@requires_schema
@settings(max_examples=50)
@given(
    imports=interval_series(known_qualities),
    exports=interval_series(known_qualities),
    title=titles,
)
def test_random_series_validate_and_read_back_equal_in_both_readers(
    xsdata_reader: XsdataReader,
    imports: tuple[IntervalReading, ...],
    exports: tuple[IntervalReading, ...],
    title: str,
) -> None:
    usage = usage_of(imports, exports, title)
    document = render(usage)
    assert render(usage) == document
    validate(document)
    assert xsdata_reader.read_usage(document) == usage
    assert read_with_greenbutton(document) == Usage(usage.usage_point, None, usage.meter_readings)


@requires_schema
@settings(max_examples=40)
@given(
    imports=interval_series(st.none() | st.integers(0, 0xFFFF)),
    exports=interval_series(st.none() | st.integers(0, 0xFFFF)),
)
def test_any_uint16_quality_code_is_valid_espi_and_reads_back(
    xsdata_reader: XsdataReader,
    imports: tuple[IntervalReading, ...],
    exports: tuple[IntervalReading, ...],
) -> None:
    # QualityOfReading is a union of UInt16 and its enumeration: codes outside the list are
    # valid too (greenbutton-objects would refuse them; its table is closed).
    usage = usage_of(imports, exports, "PV")
    document = render(usage)
    validate(document)
    assert xsdata_reader.read_usage(document) == usage
