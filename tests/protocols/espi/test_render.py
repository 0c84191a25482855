"""Rendering: the feed's shape, its links on the ESPI paths, ids, dates and determinism; every
renderer's output validates against the Green Button schema."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from openami.errors import LocalProtocolError
from openami.protocols import espi
from openami.protocols.espi import (
    ApplicationInformationInfo,
    AuthorizationInfo,
    AuthorizationStatus,
    DataCustodianApplicationStatus,
    DateTimeInterval,
    IntervalBlock,
    IntervalReading,
    LocalTimeParameters,
    MeterReadingInfo,
    UsagePointInfo,
    application_information_entry,
    authorization_entry,
    entry_document,
    scope_string,
    usage_feed,
    validate,
)
from tests.protocols.espi.support import (
    APRIL_1,
    BASE_URL,
    PUBLISHED,
    SUBSCRIPTION,
    UPDATED,
    Usage,
    import_type,
    parse_xml,
    requires_schema,
    sample_usage,
)

NS = {"a": "http://www.w3.org/2005/Atom", "e": "http://naesb.org/espi"}
ROOT = "/espi/1_1/resource"
UP = f"{ROOT}/Subscription/5/UsagePoint/up-1"


def render(usage: Usage | None = None, base_url: str = "") -> bytes:
    usage = usage or sample_usage()
    assert usage.local_time is not None
    return usage_feed(
        subscription_id=SUBSCRIPTION,
        usage_point=usage.usage_point,
        local_time=usage.local_time,
        meter_readings=usage.meter_readings,
        published=PUBLISHED,
        updated=UPDATED,
        base_url=base_url,
    )


def application() -> ApplicationInformationInfo:
    dc = "https://dc.example.jp/DataCustodian"
    return ApplicationInformationInfo(
        id="app-7",
        data_custodian_id="openami-dc",
        data_custodian_application_status=DataCustodianApplicationStatus.PRODUCTION,
        third_party_notify_uri="https://tp.example.jp/espi/1_1/Notification",
        authorization_server_authorization_endpoint=f"{dc}/oauth/authorize",
        authorization_server_token_endpoint=f"{dc}/oauth/token",
        data_custodian_bulk_request_uri=f"{dc}/espi/1_1/resource/Batch/Bulk/7",
        data_custodian_resource_endpoint=f"{dc}/espi/1_1/resource",
        client_secret="s3cr3t-s3cr3t",
        client_name="Denki Insights",
        redirect_uris=("https://tp.example.jp/callback",),
        client_id="tp-client-7",
        software_id="denki-insights",
        software_version="2.1",
        client_id_issued_at=1743433200,
        client_secret_expires_at=0,
        scopes=(scope_string((1, 3, 4, 5, 13, 14, 39)),),
        registration_client_uri=f"{dc}/espi/1_1/resource/ApplicationInformation/app-7",
        registration_access_token="reg-token-7",
        third_party_application_description="Half-hourly usage insights",
        third_party_application_use=1,
        contacts=("ops@tp.example.jp",),
    )


def authorization() -> AuthorizationInfo:
    return AuthorizationInfo(
        id="auth-9",
        status=AuthorizationStatus.ACTIVE,
        scope=scope_string((1, 3, 4, 5, 13, 14, 39)),
        expires_at=1775000000,
        resource_uri=f"{BASE_URL}/espi/1_1/resource/Batch/Subscription/5",
        authorization_uri=f"{BASE_URL}/espi/1_1/resource/Authorization/auth-9",
        authorized_period=DateTimeInterval(1743433200, 365 * 86400),
        published_period=DateTimeInterval(1743433200 - 395 * 86400, 395 * 86400),
        grant_type="authorization_code",
        application_information_id="app-7",
    )


def body(entry: ET.Element) -> ET.Element:
    content = entry.find("a:content", NS)
    assert content is not None
    (resource,) = list(content)
    return resource


def entries_by_kind(document: bytes) -> dict[str, list[ET.Element]]:
    kinds: dict[str, list[ET.Element]] = {}
    for entry in parse_xml(document).findall("a:entry", NS):
        kinds.setdefault(body(entry).tag.split("}")[1], []).append(entry)
    return kinds


def links(entry: ET.Element) -> list[tuple[str, str, str]]:
    return [
        (x.get("rel", ""), x.get("href", ""), x.get("type", ""))
        for x in entry.findall("a:link", NS)
    ]


def test_the_public_names() -> None:
    assert sorted(espi.__all__) == sorted(
        [
            "ATOM_NS",
            "DST_RULE_DISABLED",
            "ESPI_NS",
            "JST_OFFSET",
            "RESOURCE_ROOT",
            "AccumulationKind",
            "ApplicationInformationInfo",
            "AuthorizationInfo",
            "AuthorizationStatus",
            "CommodityKind",
            "Currency",
            "DataCustodianApplicationStatus",
            "DateTimeInterval",
            "FlowDirection",
            "IntervalBlock",
            "IntervalReading",
            "LocalTimeParameters",
            "MeasurementKind",
            "MeterReadingInfo",
            "QualityOfReading",
            "ReadingTypeInfo",
            "Resource",
            "ServiceKind",
            "ThirdPartyApplicationStatus",
            "ThirdPartyApplicationType",
            "ThirdPartyApplicationUse",
            "UnitSymbol",
            "UsagePointInfo",
            "application_information_entry",
            "authorization_entry",
            "collection_path",
            "daily_blocks",
            "default_schema_path",
            "entry_document",
            "resource_path",
            "scope_string",
            "usage_feed",
            "validate",
        ]
    )
    for name in espi.__all__:
        assert getattr(espi, name) is not None, name
    assert (espi.RESOURCE_ROOT, espi.JST_OFFSET, espi.DST_RULE_DISABLED) == (
        ROOT,
        32400,
        0xFFFFFFFF,
    )


def test_the_feed_holds_one_entry_per_resource_and_one_block_per_day_and_channel() -> None:
    kinds = entries_by_kind(render())
    assert {k: len(v) for k, v in kinds.items()} == {
        "UsagePoint": 1,
        "LocalTimeParameters": 1,
        "MeterReading": 2,
        "ReadingType": 2,
        "IntervalBlock": 3 + 2,  # import: 1, 2 and 4 April; export: 1 and 2 April
    }


def test_links_follow_the_espi_resource_paths() -> None:
    kinds = entries_by_kind(render())
    (point,) = kinds["UsagePoint"]
    assert links(point) == [
        ("self", UP, "espi-entry/UsagePoint"),
        ("up", f"{ROOT}/Subscription/5/UsagePoint", "espi-feed/UsagePoint"),
        ("related", f"{UP}/MeterReading", "espi-feed/MeterReading"),
        ("related", f"{ROOT}/LocalTimeParameters/jst", "espi-entry/LocalTimeParameters"),
    ]
    imported = kinds["MeterReading"][0]
    assert links(imported) == [
        ("self", f"{UP}/MeterReading/import", "espi-entry/MeterReading"),
        ("up", f"{UP}/MeterReading", "espi-feed/MeterReading"),
        ("related", f"{UP}/MeterReading/import/IntervalBlock", "espi-feed/IntervalBlock"),
        ("related", f"{ROOT}/ReadingType/rt-import", "espi-entry/ReadingType"),
    ]
    assert links(kinds["IntervalBlock"][0]) == [
        ("self", f"{UP}/MeterReading/import/IntervalBlock/2025-04-01", "espi-entry/IntervalBlock"),
        ("up", f"{UP}/MeterReading/import/IntervalBlock", "espi-feed/IntervalBlock"),
    ]
    assert links(kinds["ReadingType"][0]) == [
        ("self", f"{ROOT}/ReadingType/rt-import", "espi-entry/ReadingType"),
        ("up", f"{ROOT}/ReadingType", "espi-feed/ReadingType"),
    ]
    assert links(kinds["LocalTimeParameters"][0]) == [
        ("self", f"{ROOT}/LocalTimeParameters/jst", "espi-entry/LocalTimeParameters"),
        ("up", f"{ROOT}/LocalTimeParameters", "espi-feed/LocalTimeParameters"),
    ]


def test_a_base_url_prefixes_every_href() -> None:
    document = render(base_url=BASE_URL + "/")
    hrefs = re.findall(rb'href="([^"]*)"', document)
    assert hrefs
    assert all(h.startswith(BASE_URL.encode() + b"/espi/1_1/resource/") for h in hrefs)


def test_ids_are_name_based_uuids_of_the_hrefs_and_unique() -> None:
    root = parse_xml(render(base_url=BASE_URL))
    ids = [e.text or "" for e in root.iter(f"{{{NS['a']}}}id")]
    assert len(ids) == len(set(ids)) == 1 + 11
    for entry in root.findall("a:entry", NS):
        self_href = entry.findall("a:link", NS)[0].get("href", "")
        assert (
            entry.findtext("a:id", namespaces=NS) == uuid.uuid5(uuid.NAMESPACE_URL, self_href).urn
        )
        assert uuid.UUID((entry.findtext("a:id", namespaces=NS) or "")[9:]).version == 5


def test_renders_are_byte_identical() -> None:
    assert render() == render()
    rebuilt = Usage(
        replace(sample_usage().usage_point),
        sample_usage().local_time,
        tuple(replace(m) for m in sample_usage().meter_readings),
    )
    assert render(rebuilt) == render()
    assert entry_document(authorization(), published=PUBLISHED, updated=UPDATED) == (
        entry_document(authorization(), published=PUBLISHED, updated=UPDATED)
    )


def test_dates_are_written_in_utc() -> None:
    root = parse_xml(render())
    assert root.findtext("a:updated", namespaces=NS) == "2025-04-05T17:30:15Z"
    entry = root.findall("a:entry", NS)[0]
    assert entry.findtext("a:published", namespaces=NS) == "2025-04-01T00:00:00Z"
    with pytest.raises(LocalProtocolError, match="aware"):
        usage_feed(
            subscription_id="5",
            usage_point=UsagePointInfo("u", "x"),
            local_time=LocalTimeParameters("jst"),
            meter_readings=(),
            published=datetime(2025, 4, 1),  # noqa: DTZ001 - the naive datetime under test
            updated=UPDATED,
        )


def test_only_readings_with_a_quality_carry_a_reading_quality() -> None:
    root = parse_xml(render())
    qualities = [
        (
            r.findtext("e:timePeriod/e:start", namespaces=NS),
            r.findtext("e:ReadingQuality/e:quality", namespaces=NS),
        )
        for r in root.iter(f"{{{NS['e']}}}IntervalReading")
        if r.find("e:ReadingQuality", NS) is not None
    ]
    day2 = APRIL_1 + 86400
    assert qualities == [
        (str(day2 + 5 * 1800), "8"),
        (str(day2 + 6 * 1800), "7"),
        (str(day2 + 20 * 1800), "10"),
        (str(APRIL_1 + 3 * 86400 + 47 * 1800), "9"),
    ]


def test_local_time_parameters_for_tokyo_disable_both_dst_rules() -> None:
    (entry,) = entries_by_kind(render())["LocalTimeParameters"]
    body = entry.find("a:content/e:LocalTimeParameters", NS)
    assert body is not None
    assert [(c.tag.split("}")[1], c.text) for c in body] == [
        ("dstEndRule", "FFFFFFFF"),
        ("dstOffset", "0"),
        ("dstStartRule", "FFFFFFFF"),
        ("tzOffset", "32400"),
    ]


def test_single_entries_need_their_parents_ids() -> None:
    usage = sample_usage()
    block = usage.meter_readings[0].blocks[0]
    with pytest.raises(LocalProtocolError, match="meter_reading_id"):
        entry_document(
            block, published=PUBLISHED, updated=UPDATED, subscription_id="5", usage_point_id="up-1"
        )
    with pytest.raises(LocalProtocolError, match="subscription_id"):
        entry_document(usage.usage_point, published=PUBLISHED, updated=UPDATED)
    with pytest.raises(LocalProtocolError, match="no ESPI entry"):
        entry_document("UsagePoint", published=PUBLISHED, updated=UPDATED)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="white space"):
        entry_document(usage.usage_point, published=PUBLISHED, updated=UPDATED, base_url="a b")


def test_a_feed_refuses_clashing_ids() -> None:
    usage = sample_usage()
    twice = (usage.meter_readings[0], usage.meter_readings[0])
    with pytest.raises(LocalProtocolError, match="share an id"):
        render(Usage(usage.usage_point, usage.local_time, twice))
    other = replace(usage.meter_readings[1], reading_type=import_type(title="other"))
    with pytest.raises(LocalProtocolError, match="reading types share"):
        render(Usage(usage.usage_point, usage.local_time, (usage.meter_readings[0], other)))


def test_a_shared_reading_type_gets_one_entry() -> None:
    usage = sample_usage()
    same = replace(usage.meter_readings[1], reading_type=usage.meter_readings[0].reading_type)
    kinds = entries_by_kind(
        render(Usage(usage.usage_point, usage.local_time, (usage.meter_readings[0], same)))
    )
    assert len(kinds["ReadingType"]) == 1
    assert len(kinds["MeterReading"]) == 2


def single_documents() -> list[tuple[str, bytes]]:
    usage = sample_usage()
    imported = usage.meter_readings[0]
    stamps: dict[str, Any] = {"published": PUBLISHED, "updated": UPDATED, "base_url": BASE_URL}
    parents: dict[str, Any] = {
        "subscription_id": "5",
        "usage_point_id": "up-1",
        "meter_reading_id": "import",
    }
    return [
        ("UsagePoint", entry_document(usage.usage_point, local_time_id="jst", **parents, **stamps)),
        ("MeterReading", entry_document(imported, **parents, **stamps)),
        ("IntervalBlock", entry_document(imported.blocks[1], **parents, **stamps)),
        ("ReadingType", entry_document(imported.reading_type, **stamps)),
        ("LocalTimeParameters", entry_document(LocalTimeParameters("jst"), **stamps)),
        ("ApplicationInformation", application_information_entry(application(), **stamps)),
        ("Authorization", authorization_entry(authorization(), **stamps)),
    ]


@requires_schema
def test_the_feed_validates() -> None:
    validate(render())
    validate(render(base_url=BASE_URL))


@requires_schema
@pytest.mark.parametrize(
    ("kind", "document"), single_documents(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_entry_document_validates(kind: str, document: bytes) -> None:
    root = parse_xml(document)
    assert root.tag == f"{{{NS['a']}}}entry"
    assert body(root).tag == f"{{{NS['e']}}}{kind}"
    validate(document)


@requires_schema
def test_an_empty_block_and_a_feed_without_readings_validate() -> None:
    empty = IntervalBlock("2025-04-01", APRIL_1, 86400, ())
    validate(
        entry_document(
            empty,
            published=PUBLISHED,
            updated=UPDATED,
            subscription_id="5",
            usage_point_id="u",
            meter_reading_id="m",
        )
    )
    usage = sample_usage()
    validate(render(Usage(usage.usage_point, usage.local_time, ())))
    bare = MeterReadingInfo("m", "", import_type(currency=None, title=""), ())
    validate(render(Usage(usage.usage_point, usage.local_time, (bare,))))


@requires_schema
def test_an_authorization_with_an_error_and_no_optional_parts_validates() -> None:
    auth = AuthorizationInfo(
        id="auth-10",
        status=AuthorizationStatus.DENIED,
        scope="FB=1_3_4_5_13_14_39",
        expires_at=0,
        resource_uri="/espi/1_1/resource/Batch/Subscription/6",
        authorization_uri="/espi/1_1/resource/Authorization/auth-10",
        error="access_denied",
        error_description="the customer declined",
    )
    validate(
        authorization_entry(auth, published=PUBLISHED, updated=datetime(2025, 4, 2, tzinfo=UTC))
    )


def test_text_is_escaped() -> None:
    point = UsagePointInfo("u", 'A & B <"home">')
    document = entry_document(point, published=PUBLISHED, updated=UPDATED, subscription_id="5")
    assert parse_xml(document).findtext("a:title", namespaces=NS) == 'A & B <"home">'


def test_a_reading_value_and_its_quality_are_integers_in_the_output() -> None:
    block = IntervalBlock(
        "d", 0, 3600, (IntervalReading(0, 1800, -5, 7), IntervalReading(1800, 1800, 2**47))
    )
    document = entry_document(
        block,
        published=PUBLISHED,
        updated=UPDATED,
        subscription_id="5",
        usage_point_id="u",
        meter_reading_id="m",
    )
    root = parse_xml(document)
    values = [
        r.findtext("e:value", namespaces=NS) for r in root.iter(f"{{{NS['e']}}}IntervalReading")
    ]
    assert values == ["-5", str(2**47)]
