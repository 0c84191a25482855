"""The bulk path at a scale where plans and driver limits show: tens of thousands of meters,
customers and contracts in one call each, registered twice (the second run adds nothing),
then the look-ups an outage alarm makes. On SQLite and PostgreSQL alike; the timings of a
million are in the registry's notes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from openami.mdm.registry import Customer, CustomerAgreement
from tests.mdm.registry_support import BACKENDS, T0, registry_on, site, with_parties

N = 50_000


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_large_fleet_registers_in_bulk_and_again_as_a_no_op(backend: str, tmp_path: Path) -> None:
    sites = [site(i, area=f"area-{i % 40}") for i in range(1, N + 1)]
    customers = [Customer(f"c-{i}", f"Customer {i}") for i in range(1, N + 1)]
    contracts = [
        CustomerAgreement(f"k-{i}", f"c-{i}", f"up-{i}", "r-incumbent", "jp-residential-tou", T0)
        for i in range(1, N + 1)
    ]
    with registry_on(backend, tmp_path) as registry:
        with_parties(registry, 0)
        started = time.perf_counter()
        first = registry.register_fleet(sites, T0)
        assert (first.meters, first.com_modules, first.usage_points) == (N, N, N)
        assert registry.add_customers(customers) == N
        assert registry.add_contracts(contracts) == N
        took = time.perf_counter() - started
        again = registry.register_fleet(sites, T0)
        assert (again.meters, again.com_modules, again.usage_points) == (0, 0, 0)
        assert registry.add_customers(customers) == 0
        assert registry.add_contracts(contracts) == 0
        assert registry.count() == N
        by_area = registry.customers_by_area(T0)
        assert len(by_area) == 40 and sum(by_area.values()) == N
        outage = registry.customers_by_area(T0, range(1, N // 10 + 1))
        assert sum(outage.values()) == N // 10
        assert registry.contract_at(N, T0) == contracts[-1]
        print(f"{backend}: {N} meters, customers and contracts in {took:.1f} s")
