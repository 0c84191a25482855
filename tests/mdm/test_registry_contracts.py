"""Contracts in the registry: adding, switching retailer, ending, what each retailer may see,
and the customers an area or an outage touches. On SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from openami.errors import RegistryError
from openami.mdm.registry import (
    Customer,
    CustomerAgreement,
    CustomerKind,
    PricingStructure,
    Registry,
    RetailerSpan,
    TariffKind,
)
from tests.mdm.registry_support import (
    BACKENDS,
    DAY,
    T0,
    contract,
    registry_on,
    site,
    with_parties,
)

MONTH = 30 * DAY


@pytest.fixture(params=BACKENDS)
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    with registry_on(request.param, tmp_path) as opened:
        opened.register_fleet(
            [site(i, area="north" if i <= 3 else "south") for i in range(1, 6)], T0 - MONTH
        )
        with_parties(opened, 5)
        yield opened


def span(retailer: str, mrid: str, start: object, end: object, point: str = "up-1") -> RetailerSpan:
    return RetailerSpan(retailer, mrid, "c-1", "jp-residential-flat", point, start, end)  # type: ignore[arg-type]


# -- adding --------------------------------------------------------------------------------


def test_contracts_are_added_in_bulk_and_again_as_a_no_op(registry: Registry) -> None:
    batch = [contract(f"k-{i}", f"up-{i}", T0, customer=f"c-{i}") for i in range(1, 6)]
    assert registry.add_contracts(batch) == 5
    assert registry.add_contracts(batch) == 0
    assert registry.contracts("up-3") == [batch[2]]
    assert registry.contract("k-3") == batch[2]
    assert registry.contract("k-9") is None


def test_an_overlapping_contract_is_refused_with_a_clear_error(registry: Registry) -> None:
    registry.add_contract(contract("k-1", "up-1", T0, T0 + MONTH))
    overlapping = contract("k-2", "up-1", T0 + 10 * DAY, customer="c-2")
    with pytest.raises(
        RegistryError,
        match=r"usage point up-1: contract k-1 \(2026-03-31T15:00:00\+00:00 to "
        r"2026-04-30T15:00:00\+00:00\) overlaps contract k-2",
    ):
        registry.add_contract(overlapping)
    assert [c.mrid for c in registry.contracts("up-1")] == ["k-1"]


@pytest.mark.parametrize(
    ("second", "message"),
    [
        (contract("k-2", "up-1", T0), "overlaps"),  # the same start
        (contract("k-2", "up-1", T0 - DAY, T0 + DAY), "overlaps"),  # reaching into it
        (contract("k-2", "up-1", T0 - MONTH), "overlaps"),  # open-ended before it
        (contract("k-2", "up-1", T0 + 2 * MONTH), "no contract from"),  # after a gap
        (contract("k-2", "up-1", T0 - MONTH, T0 - DAY), "no contract from"),  # gap before
        (contract("k-2", "up-9", T0), "names usage point up-9, which is not registered"),
        (contract("k-2", "up-2", T0, customer="c-9"), "names customer c-9"),
        (contract("k-2", "up-2", T0, retailer="r-9"), "names retailer r-9"),
        (contract("k-2", "up-2", T0, tariff="jp-nope"), "names tariff jp-nope"),
        (contract("k-1", "up-2", T0), "contract k-1 is registered with other details"),
    ],
)
def test_a_contract_that_breaks_a_rule_is_refused(
    registry: Registry, second: CustomerAgreement, message: str
) -> None:
    registry.add_contract(contract("k-1", "up-1", T0, T0 + MONTH))
    with pytest.raises(RegistryError, match=message):
        registry.add_contract(second)
    assert registry.contract("k-2") is None


def test_a_gap_between_tenants_is_allowed_when_asked(registry: Registry) -> None:
    registry.add_contract(contract("k-1", "up-1", T0, T0 + MONTH))
    later = contract("k-2", "up-1", T0 + 2 * MONTH, customer="c-2")
    assert registry.add_contract(later, allow_gap=True)
    assert registry.contract_in_force("up-1", T0 + MONTH + DAY) is None
    assert registry.contract_in_force("up-1", T0 + 2 * MONTH) == later


def test_contracts_back_to_back_in_one_batch(registry: Registry) -> None:
    batch = [
        contract("k-1", "up-1", T0, T0 + MONTH),
        contract("k-2", "up-1", T0 + MONTH, retailer="r-newcomer"),
        contract("k-3", "up-1", T0 - MONTH, T0, retailer="r-third"),
    ]
    assert registry.add_contracts(batch) == 3
    assert [c.mrid for c in registry.contracts("up-1")] == ["k-3", "k-1", "k-2"]
    with pytest.raises(RegistryError, match="overlaps"):
        registry.add_contracts(
            [contract("k-4", "up-2", T0, T0 + MONTH), contract("k-5", "up-2", T0 + DAY)]
        )
    assert registry.contracts("up-2") == []


# -- switching -----------------------------------------------------------------------------


def test_a_switch_ends_one_contract_and_starts_the_next(registry: Registry) -> None:
    registry.add_contract(contract("k-1", "up-1", T0))
    switch = T0 + MONTH
    new = registry.switch_retailer(
        "up-1", switch, mrid="k-2", retailer="r-newcomer", tariff="jp-residential-tou"
    )
    assert new == CustomerAgreement(
        "k-2", "c-1", "up-1", "r-newcomer", "jp-residential-tou", switch
    )
    old = registry.contract("k-1")
    assert old is not None and old.valid_to == switch
    assert registry.contract_in_force("up-1", switch - timedelta(microseconds=1)) == old
    assert registry.contract_in_force("up-1", switch) == new
    assert registry.contract_at(1, switch) == new
    assert registry.contract_at(1, switch - DAY) == old


def test_a_switch_inside_a_fixed_term_keeps_its_end(registry: Registry) -> None:
    registry.add_contracts(
        [contract("k-1", "up-1", T0, T0 + MONTH), contract("k-3", "up-1", T0 + MONTH)]
    )
    new = registry.switch_retailer(
        "up-1", T0 + 10 * DAY, mrid="k-2", retailer="r-newcomer", tariff="jp-residential-tou"
    )
    assert (new.valid_from, new.valid_to) == (T0 + 10 * DAY, T0 + MONTH)
    assert [c.mrid for c in registry.contracts("up-1")] == ["k-1", "k-2", "k-3"]


def test_a_switch_on_the_same_day_as_the_start(registry: Registry) -> None:
    registry.add_contract(contract("k-1", "up-1", T0))
    # at the very instant it starts: the old contract would be empty
    with pytest.raises(RegistryError, match=r"contract k-1 starts at .* would leave it empty"):
        registry.switch_retailer(
            "up-1", T0, mrid="k-2", retailer="r-newcomer", tariff="jp-residential-tou"
        )
    # later the same (Japanese) day: a short contract, and a valid one
    new = registry.switch_retailer(
        "up-1",
        T0 + timedelta(hours=15),
        mrid="k-2",
        retailer="r-newcomer",
        tariff="jp-residential-tou",
    )
    old = registry.contract("k-1")
    assert old is not None and old.valid_to == new.valid_from == T0 + timedelta(hours=15)


def test_the_same_switch_asked_twice_is_recorded_once(registry: Registry) -> None:
    registry.add_contract(contract("k-1", "up-1", T0))
    args = {"mrid": "k-2", "retailer": "r-newcomer", "tariff": "jp-residential-tou"}
    first = registry.switch_retailer("up-1", T0 + MONTH, **args)  # type: ignore[arg-type]
    again = registry.switch_retailer("up-1", T0 + MONTH, **args)  # type: ignore[arg-type]
    assert first == again
    assert len(registry.contracts("up-1")) == 2
    with pytest.raises(RegistryError, match="contract k-2 is registered already"):
        registry.switch_retailer(
            "up-1", T0 + MONTH, mrid="k-2", retailer="r-third", tariff="jp-residential-tou"
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"at": T0 - DAY}, "no contract in force at 2026-03-30T15:00:00"),
        ({"point": "up-2"}, "usage point up-2 has no contract in force"),
        ({"point": "up-9"}, "usage point up-9 is not registered"),
        ({"retailer": "r-9"}, "retailer r-9 is not registered"),
        ({"tariff": "jp-9"}, "tariff jp-9 is not registered"),
        ({"customer": "c-9"}, "customer c-9 is not registered"),
        ({"starts": T0 + 5 * DAY}, "before contract k-1 ends"),
        ({"starts": T0 + 12 * DAY}, "no contract from"),  # a gap, not allowed
        ({"at": T0 + 2 * MONTH}, "no contract in force"),  # after its end
    ],
)
def test_a_switch_that_breaks_a_rule_is_refused(
    registry: Registry, kwargs: dict[str, object], message: str
) -> None:
    registry.add_contract(contract("k-1", "up-1", T0, T0 + MONTH))
    call: dict[str, object] = {
        "point": "up-1",
        "at": T0 + 10 * DAY,
        "retailer": "r-newcomer",
        "tariff": "jp-residential-tou",
    } | kwargs
    point, at = call.pop("point"), call.pop("at")
    with pytest.raises(RegistryError, match=message):
        registry.switch_retailer(point, at, mrid="k-2", **call)  # type: ignore[arg-type]
    assert [c.mrid for c in registry.contracts("up-1")] == ["k-1"]
    assert registry.contract("k-1") == contract("k-1", "up-1", T0, T0 + MONTH)


def test_a_switch_with_an_allowed_gap(registry: Registry) -> None:
    registry.add_contract(contract("k-1", "up-1", T0))
    new = registry.switch_retailer(
        "up-1",
        T0 + 10 * DAY,
        mrid="k-2",
        retailer="r-newcomer",
        tariff="jp-residential-tou",
        starts=T0 + 12 * DAY,
        allow_gap=True,
        customer="c-2",
        contract_current_a=60,
    )
    assert (new.customer, new.valid_from, new.contract_current_a) == ("c-2", T0 + 12 * DAY, 60)
    assert registry.contract_in_force("up-1", T0 + 11 * DAY) is None


# -- ending --------------------------------------------------------------------------------


def test_a_contract_is_ended_and_the_premise_left_without_one(registry: Registry) -> None:
    registry.add_contract(contract("k-1", "up-1", T0))
    ended = registry.end_contract("k-1", T0 + MONTH)
    assert ended.valid_to == T0 + MONTH
    assert registry.contract_in_force("up-1", T0 + MONTH) is None
    assert registry.contract_at(1, T0 + MONTH) is None
    # the next tenant moves in later: a gap, which must be asked for
    with pytest.raises(RegistryError, match="no contract from"):
        registry.add_contract(contract("k-2", "up-1", T0 + MONTH + DAY, customer="c-2"))
    registry.add_contract(contract("k-2", "up-1", T0 + MONTH, customer="c-2"))


def test_ending_a_contract_early_would_leave_a_gap(registry: Registry) -> None:
    registry.add_contracts(
        [contract("k-1", "up-1", T0, T0 + MONTH), contract("k-2", "up-1", T0 + MONTH)]
    )
    with pytest.raises(RegistryError, match="no contract from"):
        registry.end_contract("k-1", T0 + 10 * DAY)
    with pytest.raises(RegistryError, match="overlaps"):
        registry.end_contract("k-1", T0 + 2 * MONTH)
    with pytest.raises(RegistryError, match="not after its start"):
        registry.end_contract("k-2", T0 + MONTH)
    with pytest.raises(RegistryError, match="contract k-9 is not registered"):
        registry.end_contract("k-9", T0)
    assert registry.end_contract("k-1", T0 + 10 * DAY, allow_gap=True).valid_to == T0 + 10 * DAY


# -- who may see what ------------------------------------------------------------------------


def test_the_retailers_of_a_period_are_split_at_switch_dates(registry: Registry) -> None:
    registry.add_contract(contract("k-1", "up-1", T0))
    registry.switch_retailer(
        "up-1", T0 + MONTH, mrid="k-2", retailer="r-newcomer", tariff="jp-residential-flat"
    )
    registry.switch_retailer(
        "up-1", T0 + 2 * MONTH, mrid="k-3", retailer="r-third", tariff="jp-residential-flat"
    )
    spans = registry.retailer_spans("up-1", T0 + 10 * DAY, T0 + 70 * DAY)
    assert spans == [
        span("r-incumbent", "k-1", T0 + 10 * DAY, T0 + MONTH),
        span("r-newcomer", "k-2", T0 + MONTH, T0 + 2 * MONTH),
        span("r-third", "k-3", T0 + 2 * MONTH, T0 + 70 * DAY),
    ]
    assert registry.retailer_spans("up-1", T0 - MONTH, T0) == []
    with pytest.raises(RegistryError, match="not after its start"):
        registry.retailer_spans("up-1", T0, T0)


def test_a_meters_data_follows_both_its_installations_and_the_contracts(registry: Registry) -> None:
    registry.add_contracts(
        [
            contract("k-1", "up-1", T0, retailer="r-incumbent"),
            contract("k-2", "up-2", T0, customer="c-2", retailer="r-newcomer"),
        ]
    )
    # meter 1 leaves up-1 after 10 days and is installed at up-2 five days later
    registry.remove_meter(2, T0 + 15 * DAY)
    registry.remove_meter(1, T0 + 10 * DAY)
    registry.install_meter(1, "up-2", T0 + 15 * DAY)
    spans = registry.meter_retailer_spans(1, T0, T0 + MONTH)
    assert [(s.retailer, s.usage_point, s.start, s.end) for s in spans] == [
        ("r-incumbent", "up-1", T0, T0 + 10 * DAY),
        ("r-newcomer", "up-2", T0 + 15 * DAY, T0 + MONTH),
    ]


# -- customers of an area -------------------------------------------------------------------


def test_the_customers_of_an_area_and_of_an_outage(registry: Registry) -> None:
    registry.add_customers([Customer("c-shop", "Corner shop", CustomerKind.COMMERCIAL)])
    registry.add_contracts(
        [contract(f"k-{i}", f"up-{i}", T0, customer=f"c-{i}") for i in (1, 2, 4, 5)]
        + [contract("k-3", "up-3", T0, customer="c-shop")]
    )
    registry.end_contract("k-2", T0 + MONTH)
    sites = registry.customers_in_area("north", T0 + DAY)
    assert [(s.customer, s.usage_point, s.meter_id, s.kind) for s in sites] == [
        ("c-1", "up-1", 1, CustomerKind.RESIDENTIAL),
        ("c-2", "up-2", 2, CustomerKind.RESIDENTIAL),
        ("c-shop", "up-3", 3, CustomerKind.COMMERCIAL),
    ]
    assert sites[0].address == "1-chome, Setagaya" and sites[0].latitude == pytest.approx(35.6001)
    assert [s.customer for s in registry.customers_in_area("north", T0 + MONTH)] == [
        "c-1",
        "c-shop",
    ]
    assert registry.customers_in_area("nowhere", T0) == []
    assert registry.customers_by_area(T0 + DAY) == {"north": 3, "south": 2}
    assert registry.customers_by_area(T0 + MONTH) == {"north": 2, "south": 2}
    # an outage reported by meters 2, 3 and 5 (and one that is not registered)
    assert registry.customers_by_area(T0 + DAY, [2, 3, 5, 999]) == {"north": 2, "south": 1}
    assert registry.customers_by_area(T0 + MONTH, [2]) == {}
    assert registry.customers_by_area(T0 + DAY, []) == {}


def test_one_customer_with_two_premises_counts_once(registry: Registry) -> None:
    registry.add_contracts([contract("k-1", "up-1", T0), contract("k-2", "up-2", T0)])
    assert registry.customers_by_area(T0) == {"north": 1}
    assert len(registry.customers_in_area("north", T0)) == 2


# -- parties ------------------------------------------------------------------------------------


def test_parties_are_added_once_and_read_back(registry: Registry) -> None:
    assert registry.add_customers([Customer("c-1", "Renamed")]) == 0  # stored ones stay
    customer = registry.customer("c-1")
    assert customer == Customer("c-1", "Customer 1", CustomerKind.RESIDENTIAL)
    retailer = registry.retailer("r-newcomer")
    assert retailer is not None and retailer.licence_id == "A0421"
    tariff = registry.tariff("jp-residential-tou")
    assert tariff == PricingStructure("jp-residential-tou", "Night owl", TariffKind.TOU, 40)
    assert tariff is not None and tariff.periods == "jp-residential-tou"
    assert registry.customer("c-9") is None and registry.retailer("r-9") is None
    assert registry.tariff("jp-9") is None
    assert (
        registry.add_tariffs([replace(tariff, code="jp-x", periods_ref="jp-residential-tou")]) == 1
    )
    other = registry.tariff("jp-x")
    assert other is not None and other.periods == "jp-residential-tou"


# -- concurrency ----------------------------------------------------------------------------------


def test_concurrent_switches_of_one_usage_point_keep_one_timeline(registry: Registry) -> None:
    """Writers racing on one usage point (each its own engine, as separate processes would
    be) are serialised by the locks: whatever succeeds, the contracts stay back to back."""
    registry.add_contract(contract("k-0", "up-1", T0))
    url = registry.engine.url.render_as_string(hide_password=False)
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        mine = Registry.open(url)
        try:
            for k in range(5):
                instant = T0 + timedelta(hours=1 + 7 * k + w)  # distinct instants
                mine.switch_retailer(
                    "up-1",
                    instant,
                    mrid=f"k-{w}-{k}",
                    retailer="r-newcomer",
                    tariff="jp-residential-tou",
                )
        except BaseException as exc:
            errors.append(exc)
        finally:
            mine.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    contracts = registry.contracts("up-1")
    assert len(contracts) == 21
    assert contracts[0].valid_from == T0 and contracts[-1].valid_to is None
    assert all(a.valid_to == b.valid_from for a, b in pairwise(contracts))
