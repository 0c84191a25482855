"""Green Button through the service: Connect My Data with a third party's token and
Download My Data with a customer's login. Every feed validates against the Green Button
Alliance's ESPI schema and is read back by greenbutton-objects with the store's values."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from openami.api.state import ApiState
from openami.protocols.espi import default_schema_path, validate

from ..protocols.espi.support import read_with_greenbutton
from .test_consent import a_customer, bearer, consent_flow

SINCE = {"published-min": "2026-08-03T00:00+09:00", "published-max": "2026-08-05T00:00+09:00"}


@pytest.fixture(autouse=True)
def _schema() -> None:
    if not default_schema_path().is_file():
        pytest.skip(f"the ESPI schema is not at {default_schema_path()} (../shared/peers)")


def _expected(api: ApiState, meter: int) -> dict[str, list[tuple[int, int]]]:
    rows = api.data.interval_reads(
        [meter],
        datetime.fromisoformat(SINCE["published-min"]),
        datetime.fromisoformat(SINCE["published-max"]),
    ).filter(pl.col("value_wh").is_not_null())
    return {
        name: [
            (int(e) - 1800, int(v))
            for e, v in rows.filter(pl.col("channel") == c)
            .select("interval_end", "value_wh")
            .iter_rows()
        ]
        for c, name in ((1, "import"), (2, "export"))
    }


def _values(document: bytes) -> dict[str, list[tuple[int, int]]]:
    usage = read_with_greenbutton(document)
    out = {}
    for reading in usage.meter_readings:
        name = reading.id.rsplit("-", 1)[1]
        out[name] = [(r.start, r.value) for b in reading.blocks for r in b.readings]
    return out


def test_connect_my_data_feed_validates_and_equals_the_store(
    client: TestClient, api: ApiState
) -> None:
    customer, password, mine = a_customer(api, 12)
    _, _, token = consent_flow(client, api, customer, password)
    consents = api.store.consents(customer)
    feed = client.get(
        f"/espi/1_1/resource/Batch/Subscription/{consents[0].consent_id}",
        params=SINCE,
        headers=bearer(token),
    )
    assert feed.status_code == 200 and feed.headers["content-type"].startswith(
        "application/atom+xml"
    )
    validate(feed.content)
    got = _values(feed.content)
    assert got == _expected(api, mine[0])
    assert len(got["import"]) == 96  # two days of half hours
    other = client.get("/espi/1_1/resource/Batch/Subscription/not-mine", headers=bearer(token))
    assert other.status_code == 404
    entry = client.get(
        f"/espi/1_1/resource/Authorization/{consents[0].consent_id}", headers=bearer(token)
    )
    assert entry.status_code == 200
    validate(entry.content)


def test_download_my_data_is_the_customer_s_own_and_only_theirs(
    client: TestClient, api: ApiState
) -> None:
    customer, password, mine = a_customer(api, 13)
    other, _pw, _ = a_customer(api, 14)
    mine_doc = client.get(
        f"/espi/1_1/resource/Batch/RetailCustomer/{customer}/UsagePoint",
        params=SINCE,
        auth=(customer, password),
    )
    assert mine_doc.status_code == 200
    validate(mine_doc.content)
    assert _values(mine_doc.content) == _expected(api, mine[0])
    theirs = client.get(
        f"/espi/1_1/resource/Batch/RetailCustomer/{other}/UsagePoint", auth=(customer, password)
    )
    assert theirs.status_code == 404


def test_the_export_command_writes_the_same_valid_feed(
    api: ApiState, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from openami.cli.main import main

    customer, _password, mine = a_customer(api, 15)
    out = tmp_path / "usage.xml"
    data_dir = str(api.data.data_dir)
    db = (
        ["--db", str(api.data.registry.engine.url)]
        if api.data.registry.engine.dialect.name != "sqlite"
        else []
    )
    args = [
        "greenbutton",
        "export",
        "--data-dir",
        data_dir,
        "--customer",
        customer,
        *db,
        "--from",
        SINCE["published-min"],
        "--to",
        SINCE["published-max"],
        "--output",
        str(out),
    ]
    assert main(args) == 0, capsys.readouterr().err
    validate(out.read_bytes())
    assert _values(out.read_bytes()) == _expected(api, mine[0])
    assert main(["greenbutton", "export", "--data-dir", data_dir, *db, "--customer", "nobody"]) == 2
    assert "not in the registry" in capsys.readouterr().err


def test_each_resource_under_its_standard_path(client: TestClient, api: ApiState) -> None:
    """What a client walking the ESPI resource tree gets: every entry validates, the day's
    interval block holds the store's 48 reads, and nothing outside the consent is served."""
    customer, password, mine = a_customer(api, 17)
    _, _, token = consent_flow(client, api, customer, password)
    sid = api.store.consents(customer)[0].consent_id
    meter = mine[0]
    base = f"/espi/1_1/resource/Subscription/{sid}/UsagePoint/{meter}"
    paths = [
        base,
        f"{base}/MeterReading/{meter}-import",
        f"{base}/MeterReading/{meter}-import/IntervalBlock/2026-08-03",
        "/espi/1_1/resource/ReadingType/wh-30min-export",
        "/espi/1_1/resource/LocalTimeParameters/jst",
    ]
    for path in paths:
        answer = client.get(path, headers=bearer(token))
        assert answer.status_code == 200, (path, answer.text)
        validate(answer.content)
    block = client.get(paths[2], headers=bearer(token)).content
    values = [int(v) for v in re.findall(rb"<value>(-?\d+)</value>", block)]
    start = datetime.fromisoformat("2026-08-03T00:00+09:00")
    expected = api.data.interval_reads(
        [meter], start, datetime.fromisoformat("2026-08-04T00:00+09:00"), (1,)
    )
    assert values == expected["value_wh"].to_list() and len(values) == 48
    other = next(m for m in range(1, 201) if m not in mine)
    refused = [
        f"/espi/1_1/resource/Subscription/{sid}/UsagePoint/{other}",
        f"/espi/1_1/resource/Subscription/not-mine/UsagePoint/{meter}",
        f"{base}/MeterReading/{other}-import",
        f"{base}/MeterReading/{meter}-import/IntervalBlock/not-a-date",
    ]
    assert {client.get(p, headers=bearer(token)).status_code for p in refused} == {404}
