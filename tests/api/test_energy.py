"""Customer energy views through the HTTP service (SQLite and PostgreSQL): use per day and
month against the validated store as billing reads it, the comparison with similar homes
against a direct Polars computation (and nothing but aggregates), the cost estimate against
a hand computation from the period energy and the price table; and who may see what."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openami.api import energy
from openami.api.state import ApiState
from openami.api.store import Role
from openami.errors import ConfigError
from openami.mdm.billing import load_tariffs, load_validated_reads
from openami.mdm.registry import PricingStructure, TariffKind
from openami.mdm.registry.schema import meter, usage_point, usage_point_meter
from openami.mdm.vee.flags import Quality
from openami.store.validated import Origin

from .test_consent import a_customer, bearer, consent_flow

JST = ZoneInfo("Asia/Tokyo")
TZ = "Asia/Tokyo"
AUGUST = (datetime(2026, 8, 1, tzinfo=JST), datetime(2026, 9, 1, tzinfo=JST))

# the demo's reads are of 3 and 4 August 2026; the views give nothing of days to come
pytestmark = pytest.mark.skipif(
    datetime.now(UTC) < datetime(2026, 8, 5, tzinfo=JST),
    reason="the demo's August 2026 reads are still in the future by this machine's clock",
)


def operator(api: ApiState) -> dict[str, str]:
    return {"X-API-Key": api.store.create_key("energy views", Role.READ_ONLY)}


def valid_reads(api: ApiState, start: datetime, end: datetime) -> pl.DataFrame:
    """What billing reads from the validated store, valid reads only, with the local day
    in which each interval starts."""
    rows = load_validated_reads(api.data.validated, start.astimezone(UTC), end.astimezone(UTC))
    return rows.filter(pl.col("valid")).with_columns(
        day=(pl.col("interval_end") - timedelta(minutes=30)).dt.convert_time_zone(TZ).dt.date()
    )


def edit(
    api: ApiState, meter_id: int, changes: list[tuple[datetime, int | None, int, int]]
) -> None:
    """New versions of import reads: (interval end, value, flags, origin)."""
    api.data.validated.append(
        pl.DataFrame(
            {
                "meter_id": [meter_id] * len(changes),
                "channel": [1] * len(changes),
                "interval_end": [int(c[0].timestamp()) for c in changes],
                "value_wh": [c[1] for c in changes],
                "version": [2] * len(changes),
                "flags": [c[2] for c in changes],
                "origin": [c[3] for c in changes],
            }
        )
    )


def homes(api: ApiState) -> pl.DataFrame:
    """Every installed electricity meter with the traits of its home."""
    i, u, m = usage_point_meter.c, usage_point.c, meter.c
    query = (
        select(i.meter_id, u.mrid, u.area, u.occupants, u.all_electric, u.generation_kw, u.occupied)
        .join_from(usage_point_meter, usage_point, u.mrid == i.usage_point)
        .join(meter, m.meter_id == i.meter_id)
        .where(i.valid_to.is_(None), m.commodity == "electricity")
    )
    with api.data.registry.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(query)]
    return pl.DataFrame(
        rows,
        schema=["meter_id", "point", "area", "occupants", "all_electric", "pv_kw", "occupied"],
        orient="row",
    ).with_columns(solar=pl.col("pv_kw") > 0)


def peers_of(table: pl.DataFrame, meter_id: int) -> list[int]:
    me = table.filter(pl.col("meter_id") == meter_id).row(0, named=True)
    return (
        table.filter(
            (pl.col("point") != me["point"])
            & (pl.col("area") == me["area"])
            & (pl.col("occupants") == me["occupants"])
            & (pl.col("all_electric") == me["all_electric"])
            & (pl.col("solar") == me["solar"])
            & pl.col("occupied")
        )
        .get_column("meter_id")
        .sort()
        .to_list()
    )


def kwh(wh: float) -> float:
    return round(wh / 1000, 3)


# -- use per day and month ----------------------------------------------------------------------


def test_daily_use_is_the_sum_of_the_validated_reads(client: TestClient, api: ApiState) -> None:
    noon = datetime(2026, 8, 3, 12, tzinfo=JST)
    edit(
        api,
        7,
        [
            (noon, None, int(Quality.MISSING), int(Origin.MISSING)),  # missing
            (noon + timedelta(minutes=30), 999, int(Quality.SPIKE), int(Origin.MEASURED)),  # failed
            (  # failed, then estimated by VEE: counts
                noon + timedelta(minutes=60),
                321,
                int(Quality.SPIKE | Quality.ESTIMATED_LINEAR),
                int(Origin.ESTIMATED),
            ),
        ],
    )
    direct = (
        valid_reads(api, datetime(2026, 8, 2, tzinfo=JST), datetime(2026, 8, 6, tzinfo=JST))
        .group_by("meter_id", "day")
        .agg(pl.col("import_wh", "export_wh").sum(), intervals=pl.len())
    )
    headers = operator(api)
    for meter_id in (7, 1, 50, 123, 200):
        got = client.get(
            f"/api/v1/meters/{meter_id}/usage",
            params={"period": "daily", "start": "2026-08-02", "end": "2026-08-05"},
            headers=headers,
        )
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["start"] == "2026-08-01T15:00:00+00:00"  # midnight, Japan time
        assert body["end"] == "2026-08-05T15:00:00+00:00"
        days = {d["period"]: d for d in body["usage"]}
        assert list(days) == ["2026-08-02", "2026-08-03", "2026-08-04", "2026-08-05"]
        for day, row in days.items():
            want = direct.filter(
                (pl.col("meter_id") == meter_id) & (pl.col("day") == date.fromisoformat(day))
            )
            imported, exported, n = want.row(0)[2:] if want.height else (0, 0, 0)
            assert (row["import_wh"], row["export_wh"], row["intervals"]) == (imported, exported, n)
            assert row["import_kwh"] == kwh(imported) and row["export_kwh"] == kwh(exported)
            assert row["intervals_expected"] == 48
            assert row["complete"] == (n == 48)
        assert days["2026-08-02"]["intervals"] == 0  # before the demo's first read
        assert days["2026-08-04"]["complete"]
    # meter 7's third of August: two of its 48 half hours have no valid read
    seventh = client.get(
        "/api/v1/meters/7/usage",
        params={"start": "2026-08-03", "end": "2026-08-03"},
        headers=headers,
    ).json()["usage"]
    assert [(d["intervals"], d["complete"]) for d in seventh] == [(46, False)]


def test_monthly_use_is_the_sum_of_the_days(client: TestClient, api: ApiState) -> None:
    headers = operator(api)
    for meter_id in (7, 42):
        daily = client.get(
            f"/api/v1/meters/{meter_id}/usage",
            params={"period": "daily", "start": "2026-07-01", "end": "2026-09-30"},
            headers=headers,
        ).json()["usage"]
        assert len(daily) == 31 + 31 + 30
        monthly = client.get(
            f"/api/v1/meters/{meter_id}/usage",
            params={"period": "monthly", "start": "2026-07", "end": "2026-09"},
            headers=headers,
        ).json()["usage"]
        summed = (
            pl.DataFrame(daily)
            .group_by(month=pl.col("period").str.slice(0, 7))
            .agg(pl.col("import_wh", "export_wh", "intervals", "intervals_expected").sum())
            .sort("month")
        )
        got = pl.DataFrame(monthly).select(
            pl.col("period").alias("month"),
            "import_wh",
            "export_wh",
            "intervals",
            "intervals_expected",
        )
        assert got.to_dicts() == summed.to_dicts()
        assert [m["intervals_expected"] for m in monthly] == [31 * 48, 31 * 48, 30 * 48]
        direct = valid_reads(api, *AUGUST).filter(pl.col("meter_id") == meter_id)
        assert monthly[1]["import_wh"] == direct.get_column("import_wh").sum() > 0
        assert monthly[1]["import_kwh"] == kwh(monthly[1]["import_wh"])
        assert monthly[1]["intervals"] == direct.height == 96


def test_a_bad_span_is_refused(client: TestClient, api: ApiState) -> None:
    headers = operator(api)
    for params in (
        {"start": "2026-08-05", "end": "2026-08-03"},
        {"start": "2026-02-30"},
        {"start": "2024-01-01", "end": "2026-08-03"},  # more than 400 days
        {"period": "monthly", "end": "9999-12"},
    ):
        got = client.get("/api/v1/meters/7/usage", params=params, headers=headers)
        assert got.status_code == 400, params
    for route in ("cost", "comparison"):
        for month in ("2026-13", "9999-12", "2099-01"):  # no such month; not begun
            got = client.get(f"/api/v1/meters/7/{route}", params={"month": month}, headers=headers)
            assert got.status_code == 400, (route, month)
    assert client.get("/api/v1/meters/7/usage").status_code == 401


# -- who sees what ------------------------------------------------------------------------------


ROUTES = (
    ("usage", {"start": "2026-08-03", "end": "2026-08-04"}),
    ("comparison", {"month": "2026-08"}),
    ("cost", {"month": "2026-08"}),
)


def test_a_third_party_sees_only_the_consented_meters(client: TestClient, api: ApiState) -> None:
    customer, password, mine = a_customer(api, 6)
    assert mine == [7]
    _, _, token = consent_flow(client, api, customer, password)
    for route, params in ROUTES:
        got = client.get(f"/api/v1/meters/7/{route}", params=params, headers=bearer(token))
        assert got.status_code == 200, (route, got.text)
        # every other meter, and one that does not exist: the same 404
        others = [m for m in range(1, 201) if m != 7] + [10_000]
        refused = [
            client.get(f"/api/v1/meters/{m}/{route}", params=params, headers=bearer(token))
            for m in others
        ]
        assert {r.status_code for r in refused} == {404}
        assert {
            r.json()["detail"].replace(str(m), "N") for r, m in zip(refused, others, strict=True)
        } == {"no meter N among those this caller may read"}
    # the customer themself, with their login: their meter, and no other
    login = (customer, password)
    for route, params in ROUTES:
        assert client.get(f"/api/v1/meters/7/{route}", params=params, auth=login).status_code == 200
        assert client.get(f"/api/v1/meters/8/{route}", params=params, auth=login).status_code == 404
    trail = api.store.accesses(customer, 10_000)
    refusals = [r for r in trail if r.who.startswith("client:") and r.status == 404]
    assert sum("/usage?" in r.what for r in refusals) == 200


def test_nothing_before_the_consented_history(client: TestClient, api: ApiState) -> None:
    customer, password, _ = a_customer(api, 6)
    scope = "FB=1_3_4_5_13_14;IntervalDuration=1800;BlockDuration=daily;HistoryLength=86400"
    _, _, token = consent_flow(client, api, customer, password, scope)
    for route, params in ROUTES:
        got = client.get(f"/api/v1/meters/7/{route}", params=params, headers=bearer(token))
        assert got.status_code == 400, route
        assert "consent" in got.json()["detail"]


# -- similar homes ------------------------------------------------------------------------------


def expected_quantile(values: pl.Series, q: float) -> float:
    """The documented rule: linear interpolation between the two homes around the rank;
    the mean of three homes where the rank falls on one."""
    n = values.len()
    rank = q * (n - 1)
    if rank != int(rank):
        found = values.quantile(q, interpolation="linear")
        assert found is not None
        return found
    ordered = values.sort()
    return float(ordered.slice(int(rank) - 1, 3).mean())  # type: ignore[arg-type]


def test_the_comparison_is_aggregates_of_similar_homes(client: TestClient, api: ApiState) -> None:
    table = homes(api)
    group_sizes = {m: len(peers_of(table, m)) for m in table.get_column("meter_id").to_list()}
    others = [m for m, n in sorted(group_sizes.items()) if n >= 5 and m != 7]
    chosen = [7, *others[::9][:5]]
    assert len(chosen) >= 4
    reads = valid_reads(api, *AUGUST)
    headers = operator(api)
    for meter_id in chosen:
        got = client.get(
            f"/api/v1/meters/{meter_id}/comparison", params={"month": "2026-08"}, headers=headers
        )
        assert got.status_code == 200, got.text
        body = got.json()
        # nothing but this home's own figures and the group's aggregates
        assert set(body) == {
            "meter_id", "month", "start", "end", "intervals", "import_kwh", "percentile",
            "peer_group", "note",
        }  # fmt: skip
        assert set(body["peer_group"]) == {
            "area", "occupants", "all_electric", "solar", "homes", "left_out",
            "p25_kwh", "median_kwh", "p75_kwh",
        }  # fmt: skip
        # the same, computed directly
        peers = peers_of(table, meter_id)
        mine = reads.filter(pl.col("meter_id") == meter_id)
        sums = (
            reads.filter(pl.col("meter_id").is_in(peers))
            .join(mine.select("interval_end"), on="interval_end", how="semi")
            .group_by("meter_id")
            .agg(wh=pl.col("import_wh").sum(), n=pl.len())
        )
        values = sums.filter(pl.col("n") == mine.height).get_column("wh").cast(pl.Float64)
        own = int(mine.get_column("import_wh").sum())
        group = body["peer_group"]
        assert body["intervals"] == mine.height == 96
        assert body["import_kwh"] == kwh(own)
        assert group["homes"] == values.len() >= 5
        assert group["left_out"] == len(peers) - values.len()
        for key, q in (("p25_kwh", 0.25), ("median_kwh", 0.5), ("p75_kwh", 0.75)):
            assert group[key] == kwh(expected_quantile(values, q)), key
        below, ties = int((values < own).sum()), int((values == own).sum())
        share = 100 * (below + ties / 2) / values.len()
        assert body["percentile"] == round(share, 1)
        # no figure is one other home's own use
        alone = (
            pl.DataFrame({"wh": values})
            .group_by("wh")
            .len()
            .filter(pl.col("len") == 1)
            .get_column("wh")
        )
        told = {kwh(v) for v in alone.to_list()}
        assert told.isdisjoint({group["p25_kwh"], group["median_kwh"], group["p75_kwh"]})
        me = table.filter(pl.col("meter_id") == meter_id).row(0, named=True)
        assert (group["area"], group["occupants"], group["all_electric"], group["solar"]) == (
            me["area"],
            me["occupants"],
            me["all_electric"],
            me["solar"],
        )


def test_a_comparison_with_fewer_than_five_other_homes_is_refused(
    client: TestClient, api: ApiState
) -> None:
    table = homes(api)
    small = [m for m in table.get_column("meter_id").to_list() if len(peers_of(table, m)) < 5]
    assert small
    headers = operator(api)
    for meter_id in small[:5]:
        got = client.get(
            f"/api/v1/meters/{meter_id}/comparison", params={"month": "2026-08"}, headers=headers
        )
        assert got.status_code == 403
        assert set(got.json()) == {"detail"}
        assert "at least 5" in got.json()["detail"]


def test_group_figures_are_never_one_value_alone() -> None:
    for n in range(5, 14):
        values = pl.Series([float(7 + 13 * k + k * k) for k in range(n)])
        for num, den in ((1, 4), (1, 2), (3, 4)):
            found = energy.group_quantile(values, num, den)
            assert found not in values.to_list()
            assert values.min() < found < values.max()  # type: ignore[operator]


def test_compare_refuses_when_too_few_homes_have_the_same_half_hours() -> None:
    ends = [1_785_600_000 + 1800 * k for k in range(4)]
    rows = [
        (m, e, 100 + m, 0, not (m > 3 and e == ends[2]))  # homes 4.. miss one half hour
        for m in range(1, 10)
        for e in ends
    ]
    reads = pl.DataFrame(
        rows, schema=["meter_id", "end_s", "import_wh", "export_wh", "valid"], orient="row"
    )
    with pytest.raises(energy.TooFewPeers, match="only 2 other"):
        energy.compare(reads, 1, list(range(2, 10)))
    found = energy.compare(reads.filter(pl.col("end_s") != ends[2]), 1, list(range(2, 10)))
    assert (found.peers, found.intervals, found.import_wh) == (8, 3, 303)


# -- cost ---------------------------------------------------------------------------------------


def price_table() -> dict[str, Any]:
    text = resources.files("openami.mdm.billing").joinpath("prices.toml").read_text("utf-8")
    prices: dict[str, Any] = tomllib.loads(text)["prices"]
    return prices


def sen(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_the_cost_is_the_period_energy_priced(client: TestClient, api: ApiState) -> None:
    prices = price_table()["jp-residential-tou"]
    reads = valid_reads(api, *AUGUST).filter(pl.col("meter_id") == 7)
    hour = (pl.col("interval_end") - timedelta(minutes=30)).dt.convert_time_zone(TZ).dt.hour()
    night = (hour >= 23) | (hour < 7)
    by_hand = {
        "day": int(reads.filter(~night).get_column("import_wh").sum()),
        "night": int(reads.filter(night).get_column("import_wh").sum()),
    }
    got = client.get("/api/v1/meters/7/cost", params={"month": "2026-08"}, headers=operator(api))
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["kind"] == "estimate" and "illustrative" in body["note"]
    assert "not any utility's published rate" in body["prices_source"]
    assert (body["contract"], body["tariff"], body["contract_amps"]) == (
        "k-OAM0000000007",
        "jp-residential-tou",
        40,  # the tariff's contract current: the agreement names none
    )
    assert (body["intervals_expected"], body["intervals_valid"]) == (31 * 48, 96)
    assert not body["complete"]
    charges = Decimal(0)
    for line in body["periods"]:
        wh = by_hand.pop(line["period"])
        price = Decimal(str(prices["energy_yen_per_kwh"][line["period"]]))
        charge = sen(Decimal(wh) / 1000 * price)
        assert (line["wh"], line["kwh"], line["yen_per_kwh"]) == (wh, kwh(wh), float(price))
        assert line["energy_charge_yen"] == float(charge)
        charges += charge
    assert by_hand == {}  # every period of the tariff, in its order
    basic = sen(Decimal(str(prices["basic_yen_per_ampere"])) * 40)
    assert body["energy_charge_yen"] == float(charges)
    assert (body["basic_charge_yen"], body["basic_share"]) == (float(basic), 1.0)
    assert body["total_yen"] == float(charges + basic)
    # July: the contract began on 4 July, so the basic charge is for 28 of 31 days
    july = client.get("/api/v1/meters/7/cost", params={"month": "2026-07"}, headers=operator(api))
    body = july.json()
    share = Decimal(28) / Decimal(31)
    assert body["basic_charge_yen"] == float(sen(basic * share))
    assert body["total_yen"] == body["basic_charge_yen"]  # no reads in July
    assert (
        client.get(
            "/api/v1/meters/7/cost", params={"month": "2026-05"}, headers=operator(api)
        ).status_code
        == 404
    )  # no contract yet


def test_the_cost_follows_the_contract_in_force(client: TestClient, api: ApiState) -> None:
    registry = api.data.registry
    registry.add_tariffs(
        [
            PricingStructure(
                "seasonal-30",
                "Seasonal TOU",
                TariffKind.TOU,
                30,
                periods_ref="jp-residential-tou-seasonal",
            )
        ]
    )
    switch = datetime(2026, 8, 4, tzinfo=JST)
    registry.switch_retailer(
        "up-OAM0000000007", switch, mrid="k-7-b", retailer="r-demo", tariff="seasonal-30"
    )
    got = client.get("/api/v1/meters/7/cost", params={"month": "2026-08"}, headers=operator(api))
    assert got.status_code == 200, got.text
    body = got.json()
    assert (body["contract"], body["tariff"], body["contract_amps"]) == (
        "k-7-b",
        "jp-residential-tou-seasonal",
        30,
    )
    assert body["start"] == switch.astimezone(UTC).isoformat()
    # 4 August 2026, a Tuesday in summer: peak 13:00-16:00, night 23:00-7:00, else daytime
    reads = valid_reads(api, switch, AUGUST[1]).filter(pl.col("meter_id") == 7)
    hour = (pl.col("interval_end") - timedelta(minutes=30)).dt.convert_time_zone(TZ).dt.hour()
    period = (
        pl.when((hour >= 23) | (hour < 7))
        .then(pl.lit("night"))
        .when((hour >= 13) & (hour < 16))
        .then(pl.lit("peak"))
        .otherwise(pl.lit("daytime"))
    )
    by_hand = dict(reads.group_by(period.alias("p")).agg(pl.col("import_wh").sum()).iter_rows())
    assert {p["period"]: p["wh"] for p in body["periods"]} == {**by_hand, "offpeak": 0}
    prices = price_table()["jp-residential-tou-seasonal"]
    basic = sen(Decimal(str(prices["basic_yen_per_ampere"])) * 30 * Decimal(28) / Decimal(31))
    assert body["basic_charge_yen"] == float(basic)


def test_a_holiday_is_off_peak() -> None:
    book = load_tariffs()
    prices = energy.load_prices(book)
    calendar = energy.month_calendar(book, 2026, 8)
    # 10 August 2026 is a Monday, 11 August Mountain Day: 14:00-14:30 on each
    ends = [datetime(2026, 8, d, 14, 30, tzinfo=JST) for d in (10, 11)]
    reads = pl.DataFrame(
        {
            "meter_id": [1, 1],
            "end_s": [int(e.timestamp()) for e in ends],
            "import_wh": [100, 200],
            "export_wh": [0, 0],
            "valid": [True, True],
        }
    )
    contract = energy.Contract(
        "k-1", 1, "jp-residential-tou-seasonal", 40, datetime(2026, 1, 1, tzinfo=UTC), None
    )
    found = energy.estimate_cost(reads, contract, calendar, prices)
    assert {p.period: p.wh for p in found.periods} == {
        "peak": 100,
        "daytime": 0,
        "offpeak": 200,
        "night": 0,
    }
    assert found.energy_charge == Decimal("0.1") * 45 + Decimal("0.2") * 28


def test_the_price_table_prices_every_tariff_and_says_it_is_illustrative() -> None:
    book = load_tariffs()
    prices = energy.load_prices(book)
    assert "illustrative" in prices.source and prices.currency == "JPY"
    for tariff in book.tariffs:
        assert [p for p, _ in prices[tariff.code].energy_yen_per_kwh] == list(tariff.periods)
    table = tomllib.loads(
        resources.files("openami.mdm.billing").joinpath("prices.toml").read_text("utf-8")
    )
    del table["prices"]["jp-residential-tou"]["energy_yen_per_kwh"]["night"]
    with pytest.raises(ConfigError, match="night"):
        energy.parse_prices(table, book)
