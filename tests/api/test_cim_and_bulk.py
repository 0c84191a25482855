"""CIM documents and the bulk feed through the service: MeterReadings and EndDeviceEvents
validate against openami's published XSDs and decode back to the store's values; the bulk
route gives many meters at once and nothing a caller may not read."""

from __future__ import annotations

import io
from datetime import datetime

import polars as pl
from fastapi.testclient import TestClient

from openami.api.state import ApiState
from openami.api.store import Role
from openami.protocols.cim import (
    DocumentKind,
    decode_end_device_events,
    decode_meter_readings,
    validate,
)

from .test_consent import a_customer, bearer, consent_flow

SPAN = {"start": "2026-08-03T00:00+09:00", "end": "2026-08-05T00:00+09:00"}


def _store(api: ApiState, meters: list[int]) -> pl.DataFrame:
    return api.data.interval_reads(
        meters, datetime.fromisoformat(SPAN["start"]), datetime.fromisoformat(SPAN["end"])
    ).filter(pl.col("value_wh").is_not_null())


def test_meter_readings_in_cim_validate_and_equal_the_store(
    client: TestClient, api: ApiState
) -> None:
    key = api.store.create_key("cim", Role.READ_ONLY)
    answer = client.get(
        "/api/v1/meters/3/interval-reads",
        params={**SPAN, "format": "cim"},
        headers={"X-API-Key": key},
    )
    assert answer.status_code == 200
    validate(answer.content, DocumentKind.METER_READINGS)
    decoded = decode_meter_readings(answer.content)
    (reading,) = decoded.meter_readings
    got = sorted(
        (int(r.time_stamp.timestamp()), r.value)
        for block in reading.interval_blocks
        for r in block.readings
    )
    expected = sorted(
        (int(e), int(v)) for e, v in _store(api, [3]).select("interval_end", "value_wh").iter_rows()
    )
    assert got == expected and len(got) == 2 * 96


def test_events_in_cim_validate(client: TestClient, api: ApiState) -> None:
    key = api.store.create_key("cim", Role.READ_ONLY)
    events = api.data.events.query(
        datetime.fromisoformat(SPAN["start"]), datetime.fromisoformat(SPAN["end"])
    )
    meter = int(events["meter_id"][0])
    answer = client.get(
        f"/api/v1/meters/{meter}/events",
        params={**SPAN, "format": "cim"},
        headers={"X-API-Key": key},
    )
    validate(answer.content, DocumentKind.END_DEVICE_EVENTS)
    decoded = decode_end_device_events(answer.content)
    assert len(decoded.events) == events.filter(pl.col("meter_id") == meter).height


def test_the_bulk_feed_of_an_operator_equals_the_store(client: TestClient, api: ApiState) -> None:
    key = api.store.create_key("retail-bulk", Role.READ_ONLY)
    meters = list(range(1, 201))
    answer = client.get(
        "/api/v1/interval-reads",
        params={**SPAN, "meter_id": meters},
        headers={"X-API-Key": key},
    )
    assert answer.status_code == 200
    got = pl.read_parquet(io.BytesIO(answer.content))
    every = api.data.interval_reads(
        meters, datetime.fromisoformat(SPAN["start"]), datetime.fromisoformat(SPAN["end"])
    )
    assert got.height == every.height == 200 * 2 * 96
    assert got["value_wh"].drop_nulls().to_list() == every["value_wh"].drop_nulls().to_list()
    assert set(got["meter_id"].unique().to_list()) == set(meters)
    ranged = client.get(
        "/api/v1/interval-reads", params={**SPAN, "meters": "1-200"}, headers={"X-API-Key": key}
    )
    assert ranged.content == answer.content
    too_many = client.get(
        "/api/v1/interval-reads", params={**SPAN, "meters": "1-10001"}, headers={"X-API-Key": key}
    )
    assert too_many.status_code == 400


def test_the_bulk_feed_refuses_a_meter_outside_the_consent(
    client: TestClient, api: ApiState
) -> None:
    customer, password, mine = a_customer(api, 16)
    _, _, token = consent_flow(client, api, customer, password)
    ok = client.get(
        "/api/v1/interval-reads", params={**SPAN, "meter_id": mine}, headers=bearer(token)
    )
    assert ok.status_code == 200
    other = next(m for m in range(1, 201) if m not in mine)
    refused = client.get(
        "/api/v1/interval-reads", params={**SPAN, "meter_id": [*mine, other]}, headers=bearer(token)
    )
    assert refused.status_code == 404
