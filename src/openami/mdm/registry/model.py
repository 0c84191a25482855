"""The registry's values: frozen records named after IEC 61968 (CIM) classes.

Every record checks itself when made, so a wrong one never reaches the database: times are
aware (and kept in UTC), spans end after they start, kinds are known. Spans are half-open,
``[valid_from, valid_to)``, ``valid_to = None`` meaning "until further notice": a switch at
instant ``t`` ends one contract at ``t`` and starts the next at ``t``, and exactly one of
them is in force at ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from openami.errors import LocalProtocolError, RegistryError

__all__ = [
    "AuxiliaryLink",
    "ComModule",
    "ComModuleService",
    "Commodity",
    "Customer",
    "CustomerAgreement",
    "CustomerKind",
    "CustomerSite",
    "FleetRegistration",
    "Installation",
    "Meter",
    "MeterKind",
    "MeterSite",
    "PricingStructure",
    "Retailer",
    "RetailerSpan",
    "TariffKind",
    "UsagePoint",
    "in_force",
    "stamp",
    "utc",
]


class MeterKind(StrEnum):
    """TEPCO's two builds: the communication unit inside the meter, or a separate part that
    can be swapped without touching the metering part (its identity, keys and data)."""

    INTEGRATED = "integrated"
    SEPARATED = "separated"


class Commodity(StrEnum):
    ELECTRICITY = "electricity"
    GAS = "gas"
    WATER = "water"


class CustomerKind(StrEnum):
    RESIDENTIAL = "residential"
    COMMERCIAL = "commercial"


class TariffKind(StrEnum):
    """How the energy charge is built (CIM PricingStructure, roughly its kind)."""

    FLAT = "flat"  # one energy rate
    BLOCK = "block"  # rate by monthly consumption tier (meter-rate lighting)
    TOU = "tou"  # rate by time of use
    DYNAMIC = "dynamic"  # critical peak / market-linked


def utc(value: datetime, what: str = "time") -> datetime:
    """``value`` in UTC; a naive datetime is refused (which instant it means is a guess)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise LocalProtocolError(f"{what} is a naive datetime; give a time zone")
    return value.astimezone(UTC)


def stamp(value: datetime | None) -> str:
    """A time as people read it in messages: ISO 8601 in UTC, or "open" for no end."""
    return "open" if value is None else value.astimezone(UTC).isoformat()


def in_force(valid_from: datetime, valid_to: datetime | None, at: datetime) -> bool:
    return valid_from <= at and (valid_to is None or at < valid_to)


def _span(obj: object, what: str) -> None:
    """Normalise ``valid_from``/``valid_to`` of a frozen record to UTC and check the order."""
    start = utc(obj.valid_from, f"{what} start")  # type: ignore[attr-defined]
    end = obj.valid_to  # type: ignore[attr-defined]
    object.__setattr__(obj, "valid_from", start)
    if end is not None:
        end = utc(end, f"{what} end")
        object.__setattr__(obj, "valid_to", end)
        if end <= start:
            raise RegistryError(f"{what} ends at {stamp(end)}, not after its start {stamp(start)}")


def _text(value: str, what: str, limit: int) -> None:
    if not value or len(value) > limit:
        raise RegistryError(f"{what} must be 1..{limit} characters, not {value!r}")


# -- assets and places -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Meter:
    """CIM Meter (an EndDevice). ``meter_id`` is the number every read and command carries;
    ``mrid`` the CIM master resource id. Gas and water meters have no DLMS system title."""

    meter_id: int
    mrid: str
    serial: str
    system_title: bytes | None = None
    kind: MeterKind = MeterKind.INTEGRATED
    commodity: Commodity = Commodity.ELECTRICITY
    manufacturer: str = ""
    installed_at: datetime | None = None  # put into service (the asset, wherever it is)
    removed_at: datetime | None = None  # retired

    def __post_init__(self) -> None:
        if not 0 < self.meter_id < 2**63:
            raise RegistryError(f"meter id {self.meter_id} is out of range")
        _text(self.mrid, "a meter mRID", 64)
        _text(self.serial, "a meter serial", 32)
        if self.system_title is not None and len(self.system_title) != 8:
            raise RegistryError(f"meter {self.meter_id}: a system title is 8 bytes")
        object.__setattr__(self, "kind", MeterKind(self.kind))
        object.__setattr__(self, "commodity", Commodity(self.commodity))
        for name in ("installed_at", "removed_at"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, utc(value, f"meter {self.meter_id} {name}"))


@dataclass(frozen=True, slots=True)
class ComModule:
    """CIM ComModule: the communication unit, with the address the head-end reaches."""

    mrid: str
    address: str

    def __post_init__(self) -> None:
        _text(self.mrid, "a communication unit mRID", 64)
        _text(self.address, f"the address of unit {self.mrid}", 64)


@dataclass(frozen=True, slots=True)
class ComModuleService:
    """One row of a meter's communication unit history: ``com_module`` served ``meter_id``
    over ``[valid_from, valid_to)``."""

    meter_id: int
    com_module: str
    address: str
    valid_from: datetime
    valid_to: datetime | None = None

    def __post_init__(self) -> None:
        _span(self, f"unit {self.com_module} on meter {self.meter_id}")


@dataclass(frozen=True, slots=True)
class UsagePoint:
    """CIM UsagePoint with its ServiceLocation folded in: the premise a meter serves.

    ``generation_kw`` (PV nameplate) and ``occupied`` are here because validation asks
    them (reverse flow where there is no PV; zero use at an occupied premise)."""

    mrid: str
    address: str = ""
    area: str = ""
    latitude: float | None = None
    longitude: float | None = None
    occupied: bool = True
    generation_kw: float = 0.0
    all_electric: bool = False
    occupants: int | None = None

    def __post_init__(self) -> None:
        _text(self.mrid, "a usage point mRID", 64)
        if (self.latitude is None) != (self.longitude is None):
            raise RegistryError(f"usage point {self.mrid}: give both latitude and longitude")
        if self.latitude is not None and not -90.0 <= self.latitude <= 90.0:
            raise RegistryError(f"usage point {self.mrid}: latitude {self.latitude}")
        if self.longitude is not None and not -180.0 <= self.longitude <= 180.0:
            raise RegistryError(f"usage point {self.mrid}: longitude {self.longitude}")
        if self.generation_kw < 0:
            raise RegistryError(f"usage point {self.mrid}: negative generation capacity")


@dataclass(frozen=True, slots=True)
class Installation:
    """``meter_id`` was installed at ``usage_point`` over ``[valid_from, valid_to)``."""

    meter_id: int
    usage_point: str
    valid_from: datetime
    valid_to: datetime | None = None

    def __post_init__(self) -> None:
        _span(self, f"the installation of meter {self.meter_id} at {self.usage_point}")


@dataclass(frozen=True, slots=True)
class AuxiliaryLink:
    """Co-metering: the gas or water meter ``meter_id`` reported through the electric meter
    ``host_meter_id`` (its communication unit) over ``[valid_from, valid_to)``."""

    meter_id: int
    host_meter_id: int
    valid_from: datetime
    valid_to: datetime | None = None

    def __post_init__(self) -> None:
        _span(self, f"the link of meter {self.meter_id} to meter {self.host_meter_id}")


# -- parties and agreements ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Customer:
    mrid: str
    name: str
    kind: CustomerKind = CustomerKind.RESIDENTIAL

    def __post_init__(self) -> None:
        _text(self.mrid, "a customer mRID", 64)
        object.__setattr__(self, "kind", CustomerKind(self.kind))


@dataclass(frozen=True, slots=True)
class Retailer:
    """A retail electricity supplier (CIM ServiceSupplier of kind retailer); ``licence_id``
    is its registration number with the regulator."""

    mrid: str
    name: str
    licence_id: str

    def __post_init__(self) -> None:
        _text(self.mrid, "a retailer mRID", 64)
        _text(self.licence_id, f"the licence id of retailer {self.mrid}", 32)


@dataclass(frozen=True, slots=True)
class PricingStructure:
    """CIM PricingStructure: a tariff. ``code`` is what contracts name (``jp-residential-tou``);
    ``periods_ref`` names the tariff-book entry (openami.mdm.billing) that says which
    time-of-use period each half hour belongs to, the same code when None."""

    code: str
    name: str = ""
    kind: TariffKind = TariffKind.FLAT
    contract_current_a: int | None = None  # the breaker size the plan is sold with, if any
    periods_ref: str | None = None

    def __post_init__(self) -> None:
        _text(self.code, "a tariff code", 64)
        object.__setattr__(self, "kind", TariffKind(self.kind))
        if self.contract_current_a is not None and self.contract_current_a <= 0:
            raise RegistryError(f"tariff {self.code}: contract current must be positive")

    @property
    def periods(self) -> str:
        return self.periods_ref or self.code


@dataclass(frozen=True, slots=True)
class CustomerAgreement:
    """CIM CustomerAgreement: the retail contract of ``customer`` at ``usage_point`` with
    ``retailer`` on ``tariff`` over ``[valid_from, valid_to)``. Contracts of one usage point
    never overlap; the data of the usage point follows these dates to the retailer.
    ``contract_current_a`` overrides the tariff's when the customer chose a breaker size."""

    mrid: str
    customer: str
    usage_point: str
    retailer: str
    tariff: str
    valid_from: datetime
    valid_to: datetime | None = None
    contract_current_a: int | None = None

    def __post_init__(self) -> None:
        _text(self.mrid, "a contract mRID", 64)
        _span(self, f"contract {self.mrid}")
        if self.contract_current_a is not None and self.contract_current_a <= 0:
            raise RegistryError(f"contract {self.mrid}: contract current must be positive")

    def in_force(self, at: datetime) -> bool:
        return in_force(self.valid_from, self.valid_to, at)


# -- composite values ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MeterSite:
    """One meter as registered in bulk: the meter, the unit serving it (None for a gas or
    water meter that talks through its host's unit), the usage point it is installed at, and
    for co-metering the electric meter it is linked to. History rows start at the meter's
    ``installed_at`` (the registration time when it has none)."""

    meter: Meter
    com_module: ComModule | None = None
    usage_point: UsagePoint | None = None
    host_meter_id: int | None = None


@dataclass(frozen=True, slots=True)
class FleetRegistration:
    """What a bulk registration added (a second run of the same fleet adds nothing)."""

    meters: int = 0
    com_modules: int = 0
    usage_points: int = 0
    seconds: float = field(default=0.0, compare=False)


@dataclass(frozen=True, slots=True)
class RetailerSpan:
    """A stretch of time during which ``retailer`` supplied ``usage_point`` under
    ``contract``: what the retailer may see of the data there (``end`` is exclusive)."""

    retailer: str
    contract: str
    customer: str
    tariff: str
    usage_point: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class CustomerSite:
    """A customer with a contract in force at a usage point, and where that is."""

    customer: str
    name: str
    kind: CustomerKind
    usage_point: str
    address: str
    area: str
    latitude: float | None
    longitude: float | None
    meter_id: int | None  # the electric meter installed there then, if any
