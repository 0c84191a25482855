"""The input values refuse what ESPI cannot say; daily blocks, scope strings and paths."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from openami.errors import LocalProtocolError
from openami.protocols.espi import (
    DST_RULE_DISABLED,
    AuthorizationInfo,
    FlowDirection,
    IntervalBlock,
    IntervalReading,
    LocalTimeParameters,
    MeterReadingInfo,
    ReadingTypeInfo,
    UsagePointInfo,
    authorization_entry,
    collection_path,
    daily_blocks,
    resource_path,
    scope_string,
)
from tests.protocols.espi.support import APRIL_1, PUBLISHED, import_type
from tests.protocols.espi.test_render import application, authorization


def test_the_reading_type_defaults_are_the_30_minute_energy_channel() -> None:
    kind = ReadingTypeInfo("rt", FlowDirection.FORWARD)
    assert (
        kind.interval_length,
        kind.uom,
        kind.power_of_ten_multiplier,
        kind.accumulation_behaviour,
        kind.commodity,
        kind.kind,
        kind.currency,
    ) == (1800, 72, 0, 4, 1, 12, 392)
    assert (FlowDirection.FORWARD, FlowDirection.REVERSE) == (1, 19)


def test_tokyo_local_time_has_no_dst() -> None:
    params = LocalTimeParameters("jst")
    assert (params.tz_offset, params.dst_offset) == (32400, 0)
    assert params.dst_start_rule == params.dst_end_rule == DST_RULE_DISABLED == 0xFFFFFFFF


@pytest.mark.parametrize(
    "make",
    [
        lambda: IntervalReading(0, 1800, 2**47 + 1),
        lambda: IntervalReading(0, 1800, -(2**47) - 1),
        lambda: IntervalReading(0, -1, 1),
        lambda: IntervalReading(0, 1800, 1, 65536),
        lambda: IntervalReading(0, 1800, True),
        lambda: IntervalReading(0, 1800, 1.5),  # type: ignore[arg-type]
        lambda: UsagePointInfo("a/b", "x"),
        lambda: UsagePointInfo("", "x"),
        lambda: UsagePointInfo("u", "bell\x07"),
        lambda: UsagePointInfo("u", "x", status=256),
        lambda: ReadingTypeInfo("rt", 70000),
        lambda: ReadingTypeInfo("rt", 1, power_of_ten_multiplier=40000),
        lambda: LocalTimeParameters("jst", dst_start_rule=2**32),
        lambda: IntervalBlock(
            "d", 0, 3600, (IntervalReading(0, 1800, 1), IntervalReading(900, 1800, 1))
        ),
        lambda: IntervalBlock(
            "d", 0, 3600, (IntervalReading(1800, 1800, 1), IntervalReading(0, 1800, 1))
        ),
        lambda: IntervalBlock("d", 0, 3600, (IntervalReading(3000, 1800, 1),)),
        lambda: IntervalBlock("d", 1800, 3600, (IntervalReading(0, 1800, 1),)),
        lambda: MeterReadingInfo(
            "m",
            "",
            import_type(),
            (IntervalBlock("a", 0, 100, ()), IntervalBlock("b", 50, 100, ())),
        ),
        lambda: MeterReadingInfo(
            "m",
            "",
            import_type(),
            (IntervalBlock("a", 0, 100, ()), IntervalBlock("a", 100, 100, ())),
        ),
        lambda: replace(authorization(), grant_type="password"),
        lambda: replace(authorization(), token_type="MAC"),
        lambda: replace(authorization(), error="nope"),
        lambda: replace(authorization(), scope="x" * 257),
        lambda: replace(authorization(), application_information_id="a b"),
        lambda: replace(application(), grant_types=("authorization_code",)),
        lambda: replace(application(), client_id="c" * 65),
        lambda: replace(application(), redirect_uris=()),
        lambda: replace(application(), response_types="token"),
        lambda: replace(application(), contacts=("x" * 257,)),
        lambda: replace(application(), third_party_application_type=-1),
    ],
)
def test_values_espi_cannot_carry_are_refused(make: Any) -> None:
    with pytest.raises(LocalProtocolError):
        make()


def test_control_characters_in_any_text_are_refused_when_rendering() -> None:
    bad = replace(authorization(), resource_uri="/espi\x00")
    with pytest.raises(LocalProtocolError, match="XML cannot carry"):
        authorization_entry(bad, published=PUBLISHED, updated=PUBLISHED)


def test_daily_blocks_cut_at_local_midnight() -> None:
    readings = [
        IntervalReading(APRIL_1 - 1800, 1800, 1),  # 23:30 on 31 March, JST
        IntervalReading(APRIL_1 + 1800, 1800, 2, 8),
        IntervalReading(APRIL_1, 1800, 3),
        IntervalReading(APRIL_1 + 2 * 86400, 1800, 4),
    ]
    blocks = daily_blocks(readings)
    assert [(b.id, b.start, b.duration) for b in blocks] == [
        ("2025-03-31", APRIL_1 - 86400, 86400),
        ("2025-04-01", APRIL_1, 86400),
        ("2025-04-03", APRIL_1 + 2 * 86400, 86400),
    ]
    assert [r.value for r in blocks[1].readings] == [3, 2]  # in time order
    assert daily_blocks([]) == ()
    utc_days = daily_blocks(readings, tz_offset=0)
    assert [b.id for b in utc_days] == ["2025-03-31", "2025-04-02"]


def test_daily_blocks_refuse_a_reading_across_midnight_and_duplicates() -> None:
    with pytest.raises(LocalProtocolError, match="midnight"):
        daily_blocks([IntervalReading(APRIL_1 - 900, 1800, 1)])
    with pytest.raises(LocalProtocolError, match="overlaps"):
        daily_blocks([IntervalReading(APRIL_1, 1800, 1), IntervalReading(APRIL_1, 1800, 2)])


def test_scope_string() -> None:
    assert scope_string((39, 1, 3, 4, 5, 13, 14, 4)) == (
        "FB=1_3_4_5_13_14_39;IntervalDuration=1800;BlockDuration=daily;HistoryLength=34128000"
    )
    assert scope_string(
        [1], interval_duration=900, block_duration="monthly", history_length=13
    ) == ("FB=1;IntervalDuration=900;BlockDuration=monthly;HistoryLength=13")
    with pytest.raises(LocalProtocolError):
        scope_string(())


def test_resource_paths() -> None:
    assert resource_path(
        "IntervalBlock", "2025-04-01", subscription="5", usage_point="1", meter_reading="import"
    ) == (
        "/espi/1_1/resource/Subscription/5/UsagePoint/1/MeterReading/import/IntervalBlock/2025-04-01"
    )
    assert collection_path("ReadingType") == "/espi/1_1/resource/ReadingType"
    assert resource_path("Authorization", "a") == "/espi/1_1/resource/Authorization/a"
    with pytest.raises(LocalProtocolError, match="usage_point"):
        collection_path("MeterReading", subscription="5")
    with pytest.raises(LocalProtocolError, match="no ESPI resource"):
        collection_path("Customer")
    with pytest.raises(LocalProtocolError, match="path segment"):
        resource_path("ReadingType", "../x")


def test_an_authorization_without_optional_parts() -> None:
    auth = AuthorizationInfo("a", 0, "FB=1", 0, "/r", "/a")
    assert auth.token_type == "Bearer" and auth.authorized_period is None
