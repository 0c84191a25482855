"""Scenarios: the areas of a utility, their meters and networks, and the faults to inject.

A scenario is a TOML file (see ``scenarios/demo.toml``). Each ``[[area]]`` names a kind of
area; the kind brings defaults drawn from how a large Japanese utility equips such places
("the right method in the right place"): RF mesh where meters stand close together in the
open, PLC in high-rise blocks and underground malls where radio does not reach, a wireless
star where meters are far apart, and the matching backhaul. Any default can be overridden in
the file. ``[[fault]]`` entries inject outages, tamper, clock errors, reverse flow, swapped
communication units, jamming and dead mesh nodes at a time and place.
"""

from __future__ import annotations

import tomllib
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import msgspec

from openami.errors import ConfigError
from openami.fleet.loadshape import TraitMix

__all__ = [
    "AREA_DEFAULTS",
    "Area",
    "AreaKind",
    "Fault",
    "FaultKind",
    "Scenario",
    "load_scenario",
    "parse_scenario",
]

Share = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class AreaKind(StrEnum):
    DENSE_RESIDENTIAL = "dense_residential"
    UNDERGROUND_CITY = "underground_city"
    HIGH_RISE = "high_rise"
    SUBURBAN = "suburban"
    RURAL = "rural"
    MOUNTAINOUS = "mountainous"


class FaultKind(StrEnum):
    OUTAGE = "outage"  # power lost for the window; last gasp at the start, power-up at the end
    TAMPER_COVER = "tamper_cover"  # terminal cover opened
    TAMPER_MAGNETIC = "tamper_magnetic"  # strong magnetic field near the meter
    CLOCK_ERROR = "clock_error"  # the meter's clock jumps by offset_s
    REVERSE_FLOW = "reverse_flow"  # export measured at a meter without PV (miswiring, theft)
    COMM_UNIT_SWAP = "comm_unit_swap"  # a separated meter gets a new communication unit
    JAMMING = "jamming"  # radio interference over the area for the window
    NODE_FAILURE = "node_failure"  # communication units die (mesh routes repair around them)


# Per kind: density (meters per km2), media shares, backhaul, and the trait mix.
# ``settlement_size`` is the mean number of meters per hamlet where houses gather in hamlets
# among fields and forest (0: spread evenly, as in towns). Hamlets decide the medium as a
# whole: the largest get the mesh (their houses hear each other), the rest the other media.
AREA_DEFAULTS: dict[AreaKind, dict[str, Any]] = {
    AreaKind.DENSE_RESIDENTIAL: {
        "density_per_km2": 8000.0,
        "settlement_size": 0,
        "media": {"rf_mesh": 0.9, "plc": 0.1},
        "backhaul": "own_fibre",
        "pv_share": 0.08,
        "commercial_share": 0.08,
    },
    AreaKind.UNDERGROUND_CITY: {
        "density_per_km2": 30000.0,
        "settlement_size": 0,
        "media": {"plc": 0.6, "rf_mesh": 0.2, "star": 0.2},
        "backhaul": "own_fibre",
        "pv_share": 0.0,
        "commercial_share": 0.7,
    },
    AreaKind.HIGH_RISE: {
        "density_per_km2": 40000.0,
        "settlement_size": 0,
        "media": {"plc": 0.7, "rf_mesh": 0.3},
        "backhaul": "carrier_fibre",
        "pv_share": 0.01,
        "commercial_share": 0.05,
    },
    AreaKind.SUBURBAN: {
        "density_per_km2": 2500.0,
        "settlement_size": 0,
        "media": {"rf_mesh": 0.95, "star": 0.05},
        "backhaul": "own_fibre",
        "pv_share": 0.18,
        "commercial_share": 0.04,
    },
    AreaKind.RURAL: {
        "density_per_km2": 150.0,
        "settlement_size": 40,
        "media": {"star": 0.6, "rf_mesh": 0.4},
        "backhaul": "lte",
        "pv_share": 0.25,
        "commercial_share": 0.03,
    },
    AreaKind.MOUNTAINOUS: {
        "density_per_km2": 30.0,
        "settlement_size": 15,
        "media": {"star": 0.9, "rf_mesh": 0.1},
        "backhaul": "lte",
        "pv_share": 0.15,
        "commercial_share": 0.03,
    },
}
MEDIA = ("rf_mesh", "star", "plc")
BACKHAULS = ("own_fibre", "carrier_fibre", "lte")


class Area(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    kind: AreaKind
    meters: Annotated[int, msgspec.Meta(ge=1, le=16_000_000)]
    density_per_km2: Annotated[float, msgspec.Meta(gt=0.0, le=1_000_000.0)] | None = None
    settlement_size: Annotated[int, msgspec.Meta(ge=0, le=100_000)] | None = None
    media: dict[str, Share] | None = None
    backhaul: str | None = None
    tariff: str = "jp-residential-tou"
    pv_share: Share | None = None
    commercial_share: Share | None = None
    all_electric_share: Share = 0.12
    gas_share: Share = 0.45
    water_share: Share = 0.25
    separated_share: Share = 0.3  # meters whose communication unit is a separate, swappable part
    network: dict[str, dict[str, float]] = msgspec.field(default_factory=dict)

    def setting(self, name: str) -> Any:
        value = getattr(self, name)
        return AREA_DEFAULTS[self.kind][name] if value is None else value

    def trait_mix(self) -> TraitMix:
        return TraitMix(
            commercial_share=float(self.setting("commercial_share")),
            all_electric_share=self.all_electric_share,
            pv_share=float(self.setting("pv_share")),
            gas_share=self.gas_share,
            water_share=self.water_share,
        )


class Fault(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kind: FaultKind
    at: datetime
    area: str | None = None  # None: the whole fleet
    duration_minutes: Annotated[float, msgspec.Meta(ge=0.0, le=366.0 * 24 * 60)] = 0.0
    share: Share = 0.01  # of the area's meters
    # clock_error only: how far the clock jumps, at most a day either way
    offset_s: Annotated[float, msgspec.Meta(ge=-86_400.0, le=86_400.0)] = 3600.0
    delivery_factor: Share = 0.05  # jamming only

    @property
    def end(self) -> datetime:
        return self.at + timedelta(minutes=self.duration_minutes)


class Scenario(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    start: datetime
    area: list[Area]
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)] = 1
    interval_minutes: int = 30
    push_spread_s: Annotated[float, msgspec.Meta(ge=0.0, le=1800.0)] = 600.0
    fault: list[Fault] = msgspec.field(default_factory=list)

    @property
    def meters(self) -> int:
        return sum(a.meters for a in self.area)


def _check(scenario: Scenario, where: str) -> Scenario:
    if scenario.start.tzinfo is None:
        raise ConfigError(f"{where}: start needs a UTC offset, e.g. 2026-08-03T00:00:00+09:00")
    if scenario.interval_minutes not in (5, 15, 30, 60):
        raise ConfigError(f"{where}: interval_minutes must be 5, 15, 30 or 60")
    if not scenario.area:
        raise ConfigError(f"{where}: a scenario needs at least one [[area]]")
    names = [a.name for a in scenario.area]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: area names must be unique")
    for area in scenario.area:
        media = area.setting("media")
        unknown = set(media) - set(MEDIA)
        if unknown:
            raise ConfigError(f"{where}: area {area.name}: unknown medium {sorted(unknown)[0]}")
        if abs(sum(media.values()) - 1.0) > 1e-6:
            raise ConfigError(f"{where}: area {area.name}: media shares must add up to 1")
        if area.setting("backhaul") not in BACKHAULS:
            raise ConfigError(
                f"{where}: area {area.name}: backhaul must be one of {', '.join(BACKHAULS)}"
            )
    if scenario.meters >= 2**24:
        raise ConfigError(f"{where}: at most 16,777,215 meters fit the 127.0.0.0/8 addresses")
    for fault in scenario.fault:
        if fault.at.tzinfo is None:
            raise ConfigError(f"{where}: fault at {fault.at} needs a UTC offset")
        if fault.area is not None and fault.area not in names:
            raise ConfigError(f"{where}: fault names unknown area {fault.area}")
    return scenario


def parse_scenario(raw: dict[str, Any], where: str = "scenario") -> Scenario:
    """Validate a decoded TOML document; errors are one line naming the field."""
    header = raw.get("scenario")
    if not isinstance(header, dict):
        raise ConfigError(f"{where}: a scenario starts with a [scenario] table")
    flat = header | {k: v for k, v in raw.items() if k != "scenario"}
    try:
        return _check(msgspec.convert(flat, Scenario, strict=False), where)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_scenario(path: Path) -> Scenario:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read scenario {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"scenario {path} is not valid TOML: {exc}") from None
    return parse_scenario(raw, str(path))
