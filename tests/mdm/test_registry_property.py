"""Property: however retailer switches and contract ends are ordered, a usage point has
exactly one contract in force at every instant its contracts cover, and never two. On
SQLite and PostgreSQL alike."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openami.errors import RegistryError
from openami.mdm.registry import CustomerAgreement, Registry, UsagePoint
from tests.mdm.registry_support import BACKENDS, RETAILERS, T0, contract, registry_on, with_parties

SPAN_MINUTES = 365 * 24 * 60  # a year of possible switch instants, to the minute


@pytest.fixture(params=BACKENDS, scope="module")
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    # one registry per backend; each example works on a usage point of its own
    with registry_on(request.param, tmp_path_factory.mktemp("registry")) as opened:
        with_parties(opened, 1)
        yield opened


def minute(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def in_force_everywhere(contracts: list[CustomerAgreement], instants: list[datetime]) -> None:
    for at in instants:
        assert sum(c.in_force(at) for c in contracts) == 1, at


# switches at random minutes (in any order, repeats included), an optional fixed end
steps = st.lists(
    st.tuples(st.integers(1, SPAN_MINUTES), st.sampled_from([r.mrid for r in RETAILERS])),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    switches=steps,
    end=st.one_of(st.none(), st.integers(1, SPAN_MINUTES + 1)),
    probes=st.lists(st.integers(0, SPAN_MINUTES + 1), min_size=1, max_size=20),
)
def test_exactly_one_contract_is_in_force_after_any_switches(
    registry: Registry, switches: list[tuple[int, str]], end: int | None, probes: list[int]
) -> None:
    point = f"up-{uuid.uuid4().hex[:12]}"
    registry.add_usage_points([UsagePoint(point, area="prop")])
    registry.add_contract(contract(f"{point}-0", point, T0, None if end is None else minute(end)))
    made = 1
    for k, (when, retailer) in enumerate(switches, start=1):
        covered = end is None or when < end
        before = registry.contracts(point)
        starts = {c.valid_from for c in before}
        try:
            registry.switch_retailer(
                point,
                minute(when),
                mrid=f"{point}-{k}",
                retailer=retailer,
                tariff="jp-residential-tou",
            )
        except RegistryError:
            # refused only where the rules say so: outside the span, or at a contract's start
            assert not covered or minute(when) in starts
            assert registry.contracts(point) == before
        else:
            assert covered and minute(when) not in starts
            made += 1
    contracts = registry.contracts(point)
    assert len(contracts) == made
    # back to back, no gap, no overlap, from T0 to the end (or open)
    assert contracts[0].valid_from == T0
    assert all(a.valid_to == b.valid_from for a, b in pairwise(contracts))
    assert contracts[-1].valid_to == (None if end is None else minute(end))
    last = SPAN_MINUTES + 1 if end is None else end
    instants = [minute(p) for p in probes if p < last]
    instants += [c.valid_from for c in contracts]
    in_force_everywhere(contracts, instants)
    for at in instants:  # and the database agrees with the rows
        found = registry.contract_in_force(point, at)
        assert found is not None and found.in_force(at)
    if end is not None:
        assert registry.contract_in_force(point, minute(end)) is None
    assert registry.contract_in_force(point, T0 - timedelta(microseconds=1)) is None
