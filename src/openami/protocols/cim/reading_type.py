"""IEC 61968-9 reading type identifiers and reading quality codes, built from named fields.

A reading type mRID is eighteen dot-separated integers, in this order::

    macroPeriod . aggregate . measuringPeriod . accumulation . flowDirection . commodity .
    measurementKind . interharmonic (numerator . denominator) . argument (numerator .
    denominator) . tou . cpp . consumptionTier . phases . multiplier . unit . currency

so a 30-minute delta of forward (imported) active energy in Wh is
``0.0.5.4.1.1.12.0.0.0.0.0.0.0.0.0.72.0``. Nothing here is written as such a string: the
identifiers are built from the field table ``FIELDS`` and the enumerations below, so that a
wrong digit shows up as a wrong name. The enumerations hold the values openami uses (and their
close neighbours), not the standard's full lists; the numbers are the standard's, checked
against the Green Button (NAESB ESPI) usage schema, which uses the same enumerations, and
against public implementations that build these identifiers.

Quality codes are ``system.category.index``: ``3.8.0`` is "estimated by the MDM".
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum

from openami.errors import DecodeError, LocalProtocolError

__all__ = [
    "BULK_FORWARD_WH",
    "BULK_REVERSE_WH",
    "FIELDS",
    "Accumulation",
    "Aggregate",
    "Commodity",
    "Currency",
    "FlowDirection",
    "MacroPeriod",
    "MeasurementKind",
    "MeasuringPeriod",
    "Multiplier",
    "Phase",
    "QualityCategory",
    "QualitySystem",
    "ReadingTypeId",
    "Unit",
    "interval_energy",
    "quality_code",
]


class MacroPeriod(IntEnum):
    NONE = 0
    BILLING_PERIOD = 8
    DAILY = 11
    MONTHLY = 13
    SEASONAL = 22
    WEEKLY = 24
    SPECIFIED_PERIOD = 32


class Aggregate(IntEnum):
    NONE = 0
    AVERAGE = 2
    EXCESS = 4
    MAXIMUM = 8
    MINIMUM = 9
    NORMAL = 12
    SUM = 26


class MeasuringPeriod(IntEnum):
    NONE = 0
    TEN_MINUTE = 1
    FIFTEEN_MINUTE = 2
    ONE_MINUTE = 3
    TWENTY_FOUR_HOUR = 4
    THIRTY_MINUTE = 5
    FIVE_MINUTE = 6
    SIXTY_MINUTE = 7


class Accumulation(IntEnum):
    NONE = 0
    BULK_QUANTITY = 1  # a register (dial) value
    CUMULATIVE = 3
    DELTA_DATA = 4  # the change over the measuring period: an interval read
    INDICATING = 6
    SUMMATION = 9
    INSTANTANEOUS = 12


class FlowDirection(IntEnum):
    NONE = 0
    FORWARD = 1  # delivered to the customer: import
    NET = 4
    REVERSE = 19  # received from the customer: export (PV surplus)
    TOTAL = 20


class Commodity(IntEnum):
    NONE = 0
    ELECTRICITY_SECONDARY_METERED = 1  # a household meter on the low-voltage side
    ELECTRICITY_PRIMARY_METERED = 2
    NATURAL_GAS = 7
    POTABLE_WATER = 9


class MeasurementKind(IntEnum):
    NONE = 0
    CURRENT = 4
    DEMAND = 8
    ENERGY = 12
    POWER = 37
    VOLTAGE = 54
    VOLUME = 58


class Phase(IntEnum):
    NONE = 0
    S12N = 769  # single-phase three-wire (Japan's 100/200 V supply): S1, S2 and neutral
    ABC = 224


class Multiplier(IntEnum):
    MILLI = -3
    NONE = 0
    KILO = 3
    MEGA = 6


class Unit(IntEnum):
    NONE = 0
    A = 5
    V = 29
    W = 38
    M3 = 42
    VA = 61
    VAR = 63
    VAH = 71
    WH = 72
    VARH = 73
    LITRE = 134


class Currency(IntEnum):
    NONE = 0
    JPY = 392  # ISO 4217 numeric


@dataclass(frozen=True, slots=True)
class ReadingTypeId:
    """The eighteen fields of a reading type identifier; ``mrid`` is its string form.

    Fields hold plain ``int`` where the value is not one of the enumerations above (a TOU
    tier, or a code openami has no name for), so every identifier can be parsed.
    """

    macro_period: int = MacroPeriod.NONE
    aggregate: int = Aggregate.NONE
    measuring_period: int = MeasuringPeriod.NONE
    accumulation: int = Accumulation.NONE
    flow_direction: int = FlowDirection.NONE
    commodity: int = Commodity.NONE
    measurement_kind: int = MeasurementKind.NONE
    interharmonic_numerator: int = 0
    interharmonic_denominator: int = 0
    argument_numerator: int = 0
    argument_denominator: int = 0
    tou: int = 0
    cpp: int = 0
    consumption_tier: int = 0
    phases: int = Phase.NONE
    multiplier: int = Multiplier.NONE
    unit: int = Unit.NONE
    currency: int = Currency.NONE

    @property
    def mrid(self) -> str:
        return ".".join(str(int(getattr(self, name))) for name, _ in FIELDS)

    @classmethod
    def parse(cls, mrid: str) -> ReadingTypeId:
        """The fields of ``mrid``; ``DecodeError`` unless it is 18 dot-separated integers."""
        parts = mrid.split(".") if isinstance(mrid, str) else []
        if len(parts) != len(FIELDS):
            raise DecodeError(f"a reading type mRID has {len(FIELDS)} fields: {mrid!r}")
        values: dict[str, int] = {}
        for (name, enum), part in zip(FIELDS, parts, strict=True):
            digits = part.removeprefix("-")
            if not (digits.isascii() and digits.isdigit() and len(digits) <= 9):
                raise DecodeError(f"reading type field {name} is not an integer: {part!r}")
            value = int(part)
            values[name] = enum(value) if enum is not None and value in _VALUES[name] else value
        return cls(**values)


# The identifier's field order, with the enumeration each field's values come from.
FIELDS: tuple[tuple[str, type[IntEnum] | None], ...] = (
    ("macro_period", MacroPeriod),
    ("aggregate", Aggregate),
    ("measuring_period", MeasuringPeriod),
    ("accumulation", Accumulation),
    ("flow_direction", FlowDirection),
    ("commodity", Commodity),
    ("measurement_kind", MeasurementKind),
    ("interharmonic_numerator", None),
    ("interharmonic_denominator", None),
    ("argument_numerator", None),
    ("argument_denominator", None),
    ("tou", None),
    ("cpp", None),
    ("consumption_tier", None),
    ("phases", Phase),
    ("multiplier", Multiplier),
    ("unit", Unit),
    ("currency", Currency),
)
assert tuple(name for name, _ in FIELDS) == tuple(f.name for f in fields(ReadingTypeId))
_VALUES = {name: frozenset(int(v) for v in enum) for name, enum in FIELDS if enum is not None}

# The measuring period of each interval length an openami meter can be set to.
_INTERVALS = {
    60: MeasuringPeriod.SIXTY_MINUTE,
    30: MeasuringPeriod.THIRTY_MINUTE,
    15: MeasuringPeriod.FIFTEEN_MINUTE,
    5: MeasuringPeriod.FIVE_MINUTE,
}


def interval_energy(
    minutes: int, direction: FlowDirection = FlowDirection.FORWARD
) -> ReadingTypeId:
    """The reading type of an interval read: active energy in Wh over ``minutes``
    (60, 30, 15 or 5), forward (import) or reverse (export)."""
    if minutes not in _INTERVALS:
        raise LocalProtocolError(f"no interval reading type for {minutes} minutes")
    return ReadingTypeId(
        measuring_period=_INTERVALS[minutes],
        accumulation=Accumulation.DELTA_DATA,
        flow_direction=direction,
        commodity=Commodity.ELECTRICITY_SECONDARY_METERED,
        measurement_kind=MeasurementKind.ENERGY,
        unit=Unit.WH,
    )


# The register (dial) values: imported and exported active energy in Wh.
BULK_FORWARD_WH = ReadingTypeId(
    accumulation=Accumulation.BULK_QUANTITY,
    flow_direction=FlowDirection.FORWARD,
    commodity=Commodity.ELECTRICITY_SECONDARY_METERED,
    measurement_kind=MeasurementKind.ENERGY,
    unit=Unit.WH,
)
BULK_REVERSE_WH = ReadingTypeId(
    accumulation=Accumulation.BULK_QUANTITY,
    flow_direction=FlowDirection.REVERSE,
    commodity=Commodity.ELECTRICITY_SECONDARY_METERED,
    measurement_kind=MeasurementKind.ENERGY,
    unit=Unit.WH,
)


class QualitySystem(IntEnum):
    """Who set a quality code (the first part of ``system.category.index``)."""

    NOT_APPLICABLE = 0
    END_DEVICE = 1  # the meter itself
    MDC = 2  # meter data collection: the head-end
    MDM = 3  # the meter data management system
    OTHER = 4
    EXTERNAL = 5


class QualityCategory(IntEnum):
    VALID = 0
    DIAGNOSTICS = 1
    POWER_QUALITY = 2
    TAMPER = 3
    DATA_COLLECTION = 4
    REASONABILITY = 5
    VALIDATION = 6
    EDITED = 7
    ESTIMATED = 8
    QUESTIONABLE = 10
    DERIVED = 11
    PROJECTED = 12


def quality_code(system: QualitySystem, category: QualityCategory, index: int = 0) -> str:
    """A reading quality type code, e.g. ``quality_code(MDM, ESTIMATED) == "3.8.0"``."""
    if not 0 <= index <= 999_999_999:
        raise LocalProtocolError(f"quality index out of range: {index}")
    return f"{int(system)}.{int(category)}.{index}"
