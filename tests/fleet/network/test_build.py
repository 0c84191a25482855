"""Building an area's network: parameter checks, and determinism from the seed."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from openami.errors import ConfigError
from openami.fleet.network import (
    AreaNetwork,
    BackhaulKind,
    Jamming,
    Medium,
    MeshNetwork,
    MeshParams,
    PlcNetwork,
    PlcParams,
    StarNetwork,
    StarParams,
    build_area_network,
    default_backhaul,
)
from openami.fleet.network.base import FloatArray

PARAMS: dict[Medium, type[MeshParams | StarParams | PlcParams]] = {
    Medium.RF_MESH: MeshParams,
    Medium.STAR: StarParams,
    Medium.PLC: PlcParams,
}


def positions(seed: int = 0, n: int = 700, side: float = 1_200.0) -> FloatArray:
    """A small town: two mesh access points, a few dozen transformers, one star cell."""
    return np.random.default_rng(seed).uniform(0.0, side, (n, 2))


# Where a seed shows: the mesh and PLC in a dense town (site placement, wiring), the star
# over a few cells whose edges have links that the per-meter shadowing makes or breaks.
SIDE = {Medium.RF_MESH: 1_200.0, Medium.PLC: 1_200.0, Medium.STAR: 6_000.0}


def topology(net: AreaNetwork) -> list[Any]:
    """What the seed fixes: sites, attachments and each medium's per-meter draws."""
    parts: list[Any] = [net.access_point.tolist()]
    for name in ("access_points_m", "hops", "shadow_db", "wiring_db"):
        if hasattr(net, name):
            parts.append(getattr(net, name).tolist())
    return parts


def outcome(net: AreaNetwork, seed: int) -> tuple[list[bool], list[float]]:
    meters = np.tile(np.arange(net.n_meters), 3)
    t = np.linspace(0.0, 3_600.0, meters.size)
    d = net.transmit(meters, t, np.random.default_rng(seed))
    return d.delivered.tolist(), np.nan_to_num(d.latency_s, nan=-1.0).tolist()


# -- determinism -------------------------------------------------------------------------------


@pytest.mark.parametrize("medium", list(Medium))
def test_the_same_seed_gives_the_same_network_and_the_same_outcomes(medium: Medium) -> None:
    pos = positions(side=SIDE[medium])
    a = build_area_network(medium, pos, BackhaulKind.LTE, None, 42, "A")
    b = build_area_network(medium, pos, BackhaulKind.LTE, None, 42, "A")
    assert topology(a) == topology(b)
    assert outcome(a, 7) == outcome(b, 7)
    # the transmit rng, not hidden state, decides the outcome: another rng differs...
    assert outcome(a, 7) != outcome(a, 8)
    # ...and the same one again repeats it
    assert outcome(a, 7) == outcome(b, 7)


@pytest.mark.parametrize("medium", list(Medium))
def test_another_seed_gives_another_network(medium: Medium) -> None:
    pos = positions(side=SIDE[medium])
    a = build_area_network(medium, pos, BackhaulKind.LTE, None, 1, "A")
    b = build_area_network(medium, pos, BackhaulKind.LTE, None, 2, "A")
    assert topology(a) != topology(b)
    assert outcome(a, 7) != outcome(b, 7)


def test_failures_and_jamming_are_deterministic_too() -> None:
    pos = positions()
    runs = []
    for _ in range(2):
        net = build_area_network(Medium.RF_MESH, pos, BackhaulKind.LTE, None, 3, "A")
        net.fail(np.arange(0, 700, 5))
        net.add_jamming(Jamming("A", 1_000.0, 2_000.0, 0.2))
        runs.append((topology(net), outcome(net, 9)))
    assert runs[0] == runs[1]


# -- parameters ------------------------------------------------------------------------------


def test_no_params_means_the_documented_defaults() -> None:
    pos = positions()
    for medium, cls in PARAMS.items():
        a = build_area_network(medium, pos, BackhaulKind.OWN_FIBRE, None, 1, "A")
        b = build_area_network(medium, pos, BackhaulKind.OWN_FIBRE, cls(), 1, "A")
        assert isinstance(a, MeshNetwork | StarNetwork | PlcNetwork)
        assert a.params == cls()
        assert outcome(a, 1) == outcome(b, 1)
        assert a.backhaul == default_backhaul(BackhaulKind.OWN_FIBRE)


@pytest.mark.parametrize(
    ("call", "names"),
    [
        ({"medium": "satellite"}, "medium"),
        ({"backhaul": "pigeon"}, "backhaul"),
        ({"params": StarParams()}, "params"),
        ({"backhaul_params": default_backhaul(BackhaulKind.LTE)}, "backhaul_params.kind"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"seed": "one"}, "seed"),
        ({"positions_m": np.zeros((0, 2))}, "positions_m"),
        ({"positions_m": np.zeros((3, 3))}, "positions_m"),
        ({"positions_m": [[0.0, 1.0], [2.0]]}, "positions_m"),
        ({"access_points_m": np.array([[np.nan, 0.0]])}, "access_points_m"),
        ({"access_points_m": np.zeros(2)}, "access_points_m"),
    ],
)
def test_bad_build_arguments_are_one_line_config_errors_naming_them(
    call: dict[str, Any], names: str
) -> None:
    args: dict[str, Any] = {
        "medium": Medium.RF_MESH,
        "positions_m": positions(n=20),
        "backhaul": BackhaulKind.OWN_FIBRE,
        "params": None,
        "seed": 1,
        "area": "A",
    }
    args.update(call)
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")) as info:
        build_area_network(**args)
    assert "\n" not in str(info.value)


@settings(max_examples=120, deadline=None)
@given(
    medium=st.sampled_from(list(Medium)),
    pos=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6),
        elements=st.floats(-1e4, 1e4) | st.sampled_from([math.nan, math.inf, -math.inf]),
    ),
)
def test_any_positions_build_a_network_or_give_a_config_error(
    medium: Medium, pos: FloatArray
) -> None:
    valid = pos.ndim == 2 and pos.shape[1] == 2 and pos.shape[0] >= 1 and np.isfinite(pos).all()
    if not valid:
        with pytest.raises(ConfigError, match="positions_m"):
            build_area_network(medium, pos, BackhaulKind.LTE, None, 1, "A")
        return
    net = build_area_network(medium, pos, BackhaulKind.LTE, None, 1, "A")
    assert net.n_meters == pos.shape[0]
    d = net.transmit(np.arange(net.n_meters), np.zeros(net.n_meters), np.random.default_rng(0))
    assert d.delivered.shape == (net.n_meters,)


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 5000),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
)


@st.composite
def one_field(draw: st.DrawFn) -> tuple[type[MeshParams | StarParams | PlcParams], str, Any]:
    cls = draw(st.sampled_from(list(PARAMS.values())))
    field = draw(st.sampled_from(cls.__struct_fields__))
    return cls, field, draw(values)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=one_field())
def test_a_bad_value_in_any_field_is_a_config_error_naming_that_field(
    case: tuple[type[MeshParams | StarParams | PlcParams], str, Any],
) -> None:
    cls, field, value = case
    error: str | None = None
    try:
        params = cls(**{field: value})
    except ConfigError as e:
        error = str(e)
    if error is not None:
        assert f"{cls.__name__}.{field}" in error
        assert "\n" not in error
        return
    # what is accepted is a number of the right kind...
    assert isinstance(value, int | float) and not isinstance(value, bool)
    assert math.isfinite(value)
    default = getattr(cls(), field)
    if isinstance(default, int):
        assert isinstance(value, int)
    # ...and a network runs on it (absurd magnitudes such as a 1e308 ms hop are accepted but
    # overflow the arithmetic; they are not simulated here)
    if abs(value) > 1e6 or 0 < abs(value) < 1e-6:
        return
    medium = next(m for m, c in PARAMS.items() if c is cls)
    pos = np.random.default_rng(0).uniform(0.0, 400.0, (25, 2))
    net = build_area_network(medium, pos, BackhaulKind.LTE, params, 1, "A")
    t = np.linspace(0.0, 600.0, 25)
    d = net.transmit(np.arange(25), t, np.random.default_rng(0), np.full(25, 500.0))
    assert np.array_equal(np.isnan(d.latency_s), ~d.delivered)


def test_params_decoded_from_a_scenario_file_are_checked_the_same_way() -> None:
    with pytest.raises(ConfigError, match=r"MeshParams\.hop_delivery"):
        msgspec.convert({"hop_delivery": 1.2}, MeshParams)
    with pytest.raises(ConfigError, match=r"StarParams\.edge_delivery"):
        msgspec.convert({"edge_delivery": 1.0}, StarParams)
    with pytest.raises(ConfigError, match=r"PlcParams\.queue_limit"):
        msgspec.convert({"queue_limit": -1}, PlcParams)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"radio_range": 100.0}, MeshParams)  # a misspelt field
