"""The demo's registry: every simulated meter at a usage point of its area, with a customer
and a retail contract on the time-of-use plan, so that the MDMS can say which customers an
outage touches and where, as a utility's registry would."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from openami.fleet.fleet import Fleet
from openami.fleet.scenario import Scenario
from openami.mdm.registry import (
    Customer,
    CustomerAgreement,
    MeterRecord,
    PricingStructure,
    Registry,
    Retailer,
    TariffKind,
)
from openami.store.sql import make_engine, sqlite_url

__all__ = ["demo_registry", "register_demo_fleet"]

RETAILER = Retailer("r-demo", "Demo Energy", "A0001")
TARIFF = PricingStructure("jp-residential-tou", "Time of use", TariffKind.TOU, 40)


def demo_registry(data_dir: Path, fleet: Fleet, scenario: Scenario) -> Registry:
    """Register the fleet (again: what is stored stays) in ``data_dir/registry.db``."""
    registry = Registry(make_engine(sqlite_url(data_dir / "registry.db")))
    register_demo_fleet(registry, fleet, scenario)
    return registry


def register_demo_fleet(registry: Registry, fleet: Fleet, scenario: Scenario) -> None:
    """Each meter at a usage point of its area, with a customer and a contract."""
    since = scenario.start - timedelta(days=30)  # in service, and under contract, before
    records = [
        MeterRecord(
            int(fleet.meter_ids[i]),
            fleet.serial(i),
            fleet.system_title(i),
            fleet.address(i)[0],
            int(fleet.traits.household_size[i]),
            bool(fleet.traits.all_electric[i]),
            float(fleet.traits.pv_kw[i]),
        )
        for i in range(fleet.n)
    ]
    areas = [scenario.area[int(fleet.area[i])].name for i in range(fleet.n)]
    registry.register_fleet([r.site(area=a) for r, a in zip(records, areas, strict=True)], since)
    registry.add_retailers([RETAILER])
    registry.add_tariffs([TARIFF])
    registry.add_customers(Customer(f"c-{r.serial}", f"Household {r.serial}") for r in records)
    registry.add_contracts(
        [
            CustomerAgreement(
                f"k-{r.serial}",
                f"c-{r.serial}",
                f"up-{r.serial}",
                RETAILER.mrid,
                TARIFF.code,
                since,
            )
            for r in records
        ]
    )
