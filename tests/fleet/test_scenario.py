"""Scenario files: the shipped ones load, and every kind of bad input is one clear line."""

from __future__ import annotations

import copy
import math
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from openami.errors import ConfigError
from openami.fleet.loadshape import TraitMix
from openami.fleet.scenario import (
    AREA_DEFAULTS,
    Area,
    AreaKind,
    FaultKind,
    Scenario,
    load_scenario,
    parse_scenario,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
JST = timezone(timedelta(hours=9))
MEDIA = {"rf_mesh", "star", "plc"}
BACKHAULS = {"own_fibre", "carrier_fibre", "lte"}
DENSE_URBAN = {AreaKind.UNDERGROUND_CITY, AreaKind.HIGH_RISE, AreaKind.DENSE_RESIDENTIAL}
RURAL = {AreaKind.RURAL, AreaKind.MOUNTAINOUS}

VALID = """\
[scenario]
name = "t"
start = 2026-08-03T00:00:00+09:00

[[area]]
name = "a"
kind = "suburban"
meters = 10
"""


def write(directory: Path, text: str) -> Path:
    path = directory / "scenario.toml"
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    """The message of the ConfigError that loading ``path`` raises: one line, naming it."""
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    return message


# -- the shipped scenarios ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["demo", "tokyo-1m"])
def test_shipped_scenarios_load(name: str) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.toml")
    assert isinstance(scenario, Scenario)
    assert scenario.name == name
    assert scenario.start.utcoffset() == timedelta(hours=9)  # written in Japan time
    assert scenario.interval_minutes == 30
    assert int(scenario.start.timestamp()) % (scenario.interval_minutes * 60) == 0
    names = {a.name for a in scenario.area}
    for area in scenario.area:
        media = area.setting("media")
        assert set(media) <= MEDIA
        assert math.isclose(sum(media.values()), 1.0)
        assert area.setting("backhaul") in BACKHAULS
        assert area.setting("density_per_km2") > 0
        assert isinstance(area.trait_mix(), TraitMix)
    assert scenario.fault, "a scenario shows off some faults"
    for fault in scenario.fault:
        assert fault.area is None or fault.area in names
        assert scenario.start <= fault.at < scenario.start + timedelta(days=2)
        assert fault.end >= fault.at


def test_the_demo_is_small_and_uses_every_medium() -> None:
    demo = load_scenario(SCENARIOS / "demo.toml")
    assert demo.meters == 1000
    used = set().union(*(a.setting("media") for a in demo.area))
    assert used == MEDIA
    # an area may override its kind's defaults: the hills here are all star
    okutama = next(a for a in demo.area if a.name == "okutama")
    assert okutama.setting("media") == {"star": 1.0}
    assert AREA_DEFAULTS[okutama.kind]["media"] != {"star": 1.0}


def test_tokyo_has_a_million_meters_from_the_centre_to_the_mountains() -> None:
    tokyo = load_scenario(SCENARIOS / "tokyo-1m.toml")
    assert tokyo.meters == 1_000_000
    by_group = {"dense urban": 0, "suburban": 0, "rural": 0}
    for area in tokyo.area:
        if area.kind in DENSE_URBAN:
            by_group["dense urban"] += area.meters
        elif area.kind is AreaKind.SUBURBAN:
            by_group["suburban"] += area.meters
        else:
            assert area.kind in RURAL
            by_group["rural"] += area.meters
    # a real mix: every group holds at least a tenth of the meters, the city the most
    assert all(m >= 100_000 for m in by_group.values()), by_group
    assert max(by_group, key=lambda g: by_group[g]) == "dense urban"
    assert {a.kind for a in tokyo.area} == set(AreaKind)  # every kind of area appears
    # every medium carries a real share of the fleet
    media_meters = dict.fromkeys(MEDIA, 0.0)
    for area in tokyo.area:
        for medium, share in area.setting("media").items():
            media_meters[medium] += share * area.meters
    assert all(m > 50_000 for m in media_meters.values()), media_meters
    assert {f.kind for f in tokyo.fault} >= {FaultKind.OUTAGE, FaultKind.JAMMING}


# -- defaults of the kinds of area ----------------------------------------------------------


@pytest.mark.parametrize("kind", list(AreaKind))
def test_every_kind_of_area_has_complete_defaults(kind: AreaKind) -> None:
    defaults = AREA_DEFAULTS[kind]
    assert set(defaults) == {
        "density_per_km2",
        "settlement_size",
        "media",
        "backhaul",
        "pv_share",
        "commercial_share",
    }
    assert set(defaults["media"]) <= MEDIA
    assert math.isclose(sum(defaults["media"].values()), 1.0)
    assert defaults["backhaul"] in BACKHAULS
    assert defaults["density_per_km2"] > 0
    # an area that says only its kind gets them all
    area = Area(name="x", kind=kind, meters=1)
    for name, value in defaults.items():
        assert area.setting(name) == value
    mix = area.trait_mix()
    assert mix.pv_share == defaults["pv_share"]
    assert mix.commercial_share == defaults["commercial_share"]
    # and the kind's settings pass the scenario's own checks
    doc = {
        "scenario": {"name": "k", "start": datetime(2026, 1, 1, tzinfo=JST)},
        "area": [{"name": "x", "kind": kind.value, "meters": 5}],
    }
    assert parse_scenario(doc).area[0].kind is kind


def test_each_kind_gets_the_medium_that_suits_it() -> None:
    def main_medium(kind: AreaKind) -> str:
        media: dict[str, float] = AREA_DEFAULTS[kind]["media"]
        return max(media, key=lambda m: media[m])

    # radio mesh where meters stand close in the open, PLC where radio does not reach,
    # a star where meters are far apart
    assert main_medium(AreaKind.DENSE_RESIDENTIAL) == "rf_mesh"
    assert main_medium(AreaKind.SUBURBAN) == "rf_mesh"
    assert main_medium(AreaKind.HIGH_RISE) == "plc"
    assert main_medium(AreaKind.UNDERGROUND_CITY) == "plc"
    assert main_medium(AreaKind.RURAL) == "star"
    assert main_medium(AreaKind.MOUNTAINOUS) == "star"
    density = {k: AREA_DEFAULTS[k]["density_per_km2"] for k in AreaKind}
    assert density[AreaKind.MOUNTAINOUS] < density[AreaKind.RURAL] < density[AreaKind.SUBURBAN]
    assert density[AreaKind.SUBURBAN] < density[AreaKind.DENSE_RESIDENTIAL]
    assert AREA_DEFAULTS[AreaKind.UNDERGROUND_CITY]["pv_share"] == 0.0  # no sky underground


# -- bad input ------------------------------------------------------------------------------

FAULT = '\n[[fault]]\nkind = "outage"\nat = 2026-08-03T01:00:00+09:00\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("[[area]]\nname = 'a'\n", "starts with a [scenario] table", id="no-header"),
        pytest.param("scenario = 3\n", "starts with a [scenario] table", id="header-not-table"),
        pytest.param(VALID.replace("+09:00", ""), "start needs a UTC offset", id="naive-start"),
        pytest.param(
            VALID.replace("start = 2026-08-03T00:00:00+09:00", 'start = "2026-08-03T00:00:00"'),
            "start needs a UTC offset",
            id="naive-start-as-text",
        ),
        pytest.param(VALID + FAULT.replace("+09:00", ""), "needs a UTC offset", id="naive-fault"),
        pytest.param(VALID + "media = { wifi = 1.0 }\n", "unknown medium wifi", id="medium"),
        pytest.param(
            VALID + "media = { rf_mesh = 0.5, star = 0.4 }\n",
            "area a: media shares must add up to 1",
            id="shares-under-1",
        ),
        pytest.param(
            VALID + "media = { rf_mesh = 0.7, plc = 0.7 }\n",
            "area a: media shares must add up to 1",
            id="shares-over-1",
        ),
        pytest.param(VALID + FAULT + 'area = "nowhere"\n', "unknown area nowhere", id="fault-area"),
        pytest.param(VALID + 'colour = "red"\n', "unknown field `colour`", id="area-field"),
        pytest.param(
            VALID.replace('name = "t"', 'name = "t"\ncolour = 1'),
            "unknown field `colour`",
            id="scenario-field",
        ),
        pytest.param(VALID + FAULT + "colour = 1\n", "unknown field `colour`", id="fault-field"),
        pytest.param(VALID.replace("suburban", "moon"), "'moon'", id="area-kind"),
        pytest.param(VALID + FAULT.replace("outage", "meteor"), "'meteor'", id="fault-kind"),
        pytest.param(VALID + 'backhaul = "pigeon"\n', "backhaul must be one of", id="backhaul"),
        pytest.param(VALID + "pv_share = 1.5\n", "pv_share", id="share-above-1"),
        pytest.param(VALID.replace("meters = 10", "meters = 0"), "meters", id="no-meters"),
        pytest.param(
            VALID.replace('name = "t"', 'name = "t"\ninterval_minutes = 7'),
            "interval_minutes must be 5, 15, 30 or 60",
            id="interval",
        ),
        pytest.param(VALID.split("[[area]]")[0], "missing required field `area`", id="no-area"),
        pytest.param(
            VALID.split("[[area]]")[0].replace('name = "t"', 'name = "t"\narea = []'),
            "at least one [[area]]",
            id="empty-area",
        ),
        pytest.param(
            VALID + "\n" + VALID.split("\n\n")[1], "area names must be unique", id="duplicate"
        ),
        pytest.param(
            VALID.replace("meters = 10", "meters = 9000000")
            + VALID.split("\n\n")[1].replace('"a"', '"b"').replace("10", "9000000"),
            "at most 16,777,215 meters",
            id="too-many-meters",
        ),
        pytest.param(
            VALID + FAULT.replace("2026-08-03T01:00:00+09:00", "2026-08-03"),
            "`date`",
            id="fault-at-a-date",
        ),
        pytest.param(VALID + "= = =\n", "is not valid TOML", id="bad-toml"),
        pytest.param(VALID + VALID, "is not valid TOML", id="table-twice"),
    ],
)
def test_bad_scenarios_are_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in config_error(write(tmp_path, text))


def test_the_valid_base_of_those_cases_loads(tmp_path: Path) -> None:
    # so that each case above fails for its own change, not for the base
    assert load_scenario(write(tmp_path, VALID)).meters == 10
    assert load_scenario(write(tmp_path, VALID + FAULT)).fault[0].kind is FaultKind.OUTAGE


def test_unreadable_files_are_one_clear_line(tmp_path: Path) -> None:
    assert "cannot read scenario" in config_error(tmp_path / "missing.toml")
    assert "cannot read scenario" in config_error(tmp_path)  # a directory
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[scenario]\n")
    assert "is not valid TOML" in config_error(binary)


@pytest.mark.parametrize(
    ("table", "field"),
    [("fault", "duration_minutes"), ("fault", "offset_s"), ("area", "density_per_km2")],
)
def test_numbers_that_are_not_finite_are_refused(table: str, field: str) -> None:
    doc = valid_doc()
    doc["fault"] = [{"kind": "clock_error", "at": datetime(2026, 8, 3, 1, tzinfo=JST)}]
    doc[table][0][field] = math.inf if field != "offset_s" else math.nan
    with pytest.raises(ConfigError):
        parse_scenario(doc)


# -- generated scenarios --------------------------------------------------------------------


def valid_doc() -> dict[str, Any]:
    return {
        "scenario": {"name": "t", "start": datetime(2026, 8, 3, tzinfo=JST)},
        "area": [{"name": "a", "kind": "suburban", "meters": 10}],
    }


# hypothesis takes naive bounds and adds the time zone itself
EARLIEST = datetime(2000, 1, 1)  # noqa: DTZ001
LATEST = datetime(2100, 1, 1)  # noqa: DTZ001
offsets = st.integers(-12, 14).map(lambda h: timezone(timedelta(hours=h)))
aware = st.datetimes(min_value=EARLIEST, max_value=LATEST, timezones=offsets)


@st.composite
def media_shares(draw: st.DrawFn) -> dict[str, float]:
    chosen = draw(st.lists(st.sampled_from(sorted(MEDIA)), min_size=1, max_size=3, unique=True))
    weights = [draw(st.integers(1, 100)) for _ in chosen]
    return {m: w / sum(weights) for m, w in zip(chosen, weights, strict=True)}


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(
        st.lists(st.text("abcdefgh-", min_size=1, max_size=8), min_size=1, max_size=6, unique=True)
    )
    areas = []
    for name in names:
        area: dict[str, Any] = {
            "name": name,
            "kind": draw(st.sampled_from(list(AreaKind))).value,
            "meters": draw(st.integers(1, 2_000_000)),
        }
        if draw(st.booleans()):
            area["media"] = draw(media_shares())
        if draw(st.booleans()):
            area["pv_share"] = draw(st.floats(0.0, 1.0))
        areas.append(area)
    faults = [
        {
            "kind": draw(st.sampled_from(list(FaultKind))).value,
            "at": draw(aware),
            "area": draw(st.sampled_from([*names, None])),
        }
        for _ in range(draw(st.integers(0, 3)))
    ]
    header = {
        "name": "generated",
        "start": draw(aware),
        "seed": draw(st.integers(0, 2**32 - 1)),
        "interval_minutes": draw(st.sampled_from([5, 15, 30, 60])),
    }
    return {
        "scenario": header,
        "area": areas,
        "fault": [{k: v for k, v in f.items() if v is not None} for f in faults],
    }


@settings(max_examples=60, deadline=None)
@given(doc=scenarios())
def test_generated_valid_scenarios_load_as_written(doc: dict[str, Any]) -> None:
    scenario = parse_scenario(copy.deepcopy(doc))
    assert scenario.meters == sum(a["meters"] for a in doc["area"])
    assert scenario.start == doc["scenario"]["start"]
    for area, raw in zip(scenario.area, doc["area"], strict=True):
        assert area.kind.value == raw["kind"]
        defaults = AREA_DEFAULTS[area.kind]
        assert area.setting("media") == raw.get("media", defaults["media"])
        assert area.trait_mix().pv_share == raw.get("pv_share", defaults["pv_share"])
    assert [f.kind.value for f in scenario.fault] == [f["kind"] for f in doc["fault"]]


@settings(max_examples=60, deadline=None)
@given(doc=scenarios(), off=st.floats(1e-4, 0.5), up=st.booleans())
def test_media_shares_that_do_not_add_up_are_refused(
    doc: dict[str, Any], off: float, up: bool
) -> None:
    area = doc["area"][0]
    media = dict(area.get("media") or AREA_DEFAULTS[AreaKind(area["kind"])]["media"])
    medium = max(media, key=lambda m: media[m])
    changed = media[medium] + (off if up else -off)
    assume(0.0 <= changed <= 1.0)
    area["media"] = media | {medium: changed}
    with pytest.raises(ConfigError, match="media shares must add up to 1"):
        parse_scenario(doc)


toml_values = st.recursive(
    st.one_of(
        st.text(max_size=10),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        aware,
        st.datetimes(min_value=EARLIEST, max_value=LATEST),  # naive: must be refused
        st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
        st.times(),
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
FIELDS = {
    "scenario": ["name", "start", "seed", "interval_minutes", "push_spread_s", "other"],
    "area": ["name", "kind", "meters", "media", "backhaul", "pv_share", "network", "other"],
    "fault": ["kind", "at", "area", "duration_minutes", "share", "offset_s", "other"],
}


@settings(max_examples=150, deadline=None)
@given(
    table=st.sampled_from(sorted(FIELDS)),
    data=st.data(),
    value=toml_values,
)
def test_any_value_anywhere_gives_a_scenario_or_a_config_error(
    table: str, data: st.DataObject, value: Any
) -> None:
    doc = valid_doc()
    doc["fault"] = [{"kind": "outage", "at": datetime(2026, 8, 3, 1, tzinfo=JST)}]
    field = data.draw(st.sampled_from(FIELDS[table]))
    target = doc["scenario"] if table == "scenario" else doc[table][0]
    target[field] = value
    try:
        parse_scenario(doc, "fuzz.toml")
    except ConfigError as exc:
        message = str(exc)
    else:
        return
    assert "\n" not in message
    assert message.startswith("fuzz.toml: ")


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=100, deadline=None)
@given(
    text=st.text(max_size=200)
    | st.sampled_from([VALID, VALID + FAULT]).flatmap(
        lambda base: st.integers(0, len(base)).map(lambda cut: base[:cut])
    )
)
def test_any_text_gives_a_scenario_or_a_config_error(fuzz_dir: Path, text: str) -> None:
    path = fuzz_dir / "any.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_scenario(path)
    except ConfigError as exc:
        message = str(exc)
    else:
        return
    assert "\n" not in message
    assert str(path) in message


def test_times_of_day_alone_are_not_datetimes() -> None:
    doc = valid_doc()
    doc["scenario"]["start"] = time(0, 0)
    with pytest.raises(ConfigError, match="start"):
        parse_scenario(doc)
