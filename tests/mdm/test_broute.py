"""B-route credentials in the registry's database, on SQLite and on PostgreSQL."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from openami.errors import LocalProtocolError, RegistryError, StoreError
from openami.mdm.broute import (
    PASSWORD_ALPHABET,
    BRouteCredentials,
    BRouteStore,
    broute_credential,
)
from openami.mdm.registry import Registry
from openami.store.sql import ensure_schema, make_engine
from tests.mdm.registry_support import BACKENDS, database_url, site

T0 = datetime(2026, 8, 3, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BRouteStore]:
    with database_url(request.param, tmp_path) as url:
        registry = Registry.open(url)
        registry.register_fleet([site(i) for i in (1, 2, 3)], T0 - timedelta(days=30))
        registry.close()
        opened = BRouteStore.open(url)
        try:
            yield opened
        finally:
            opened.close()


def test_issued_credentials_have_the_b_route_format(store: BRouteStore) -> None:
    issued = store.issue(1, T0)
    assert re.fullmatch(r"[0-9A-F]{32}", issued.rbid)
    assert len(issued.password) == 12 and set(issued.password) <= set(PASSWORD_ALPHABET)
    assert (issued.meter_id, issued.issued_at, issued.active) == (1, T0, True)
    assert store.lookup(issued.rbid) == issued.password
    assert store.lookup(issued.rbid.lower()) == issued.password
    assert store.for_meter(1) == issued
    assert store.for_meter(2) is None
    others = {store.issue(2, T0).rbid, store.issue(3, T0).rbid, issued.rbid}
    assert len(others) == 3


def test_issuing_again_replaces_the_pair_and_revokes_the_old_one(store: BRouteStore) -> None:
    first = store.issue(1, T0)
    second = store.issue(1, T0 + timedelta(days=1))
    assert second.rbid != first.rbid
    assert store.lookup(first.rbid) is None
    assert store.lookup(second.rbid) == second.password
    assert store.for_meter(1) == second
    history = store.history(1)
    assert [c.rbid for c in history] == [first.rbid, second.rbid]
    assert history[0].revoked_at == T0 + timedelta(days=1) and history[1].active


def test_revocation(store: BRouteStore) -> None:
    issued = store.issue(2, T0)
    assert store.revoke(2, T0 + timedelta(hours=1)) is True
    assert store.lookup(issued.rbid) is None
    assert store.for_meter(2) is None
    assert store.revoke(2) is False  # nothing active any more
    assert store.lookup("0" * 32) is None  # never issued


def test_unknown_meters_and_naive_times_are_refused(store: BRouteStore) -> None:
    with pytest.raises(RegistryError, match=r"^meter 99 is not in the registry$"):
        store.issue(99)
    with pytest.raises(RegistryError, match="meter 99"):
        store.revoke(99)
    with pytest.raises(LocalProtocolError):
        store.issue(1, datetime(2026, 8, 3))  # noqa: DTZ001 - refused on purpose
    store.issue(1, T0)
    with pytest.raises(RegistryError, match="issued at 2026-08-03T00:00:00"):
        store.issue(1, T0 - timedelta(days=1))  # before the pair it would replace


def test_one_active_pair_per_meter_even_when_issued_at_once(store: BRouteStore) -> None:
    with ThreadPoolExecutor(4) as pool:
        issued = list(pool.map(lambda _: store.issue(3), range(8)))
    active = [c for c in issued if store.lookup(c.rbid) is not None]
    assert len(active) == 1 and store.for_meter(3) == active[0]
    with store.engine.connect() as conn:
        count = select(func.count()).where(broute_credential.c.meter_id == 3)
        assert conn.execute(count).scalar_one() == 8
        still = select(func.count()).where(
            broute_credential.c.meter_id == 3, broute_credential.c.revoked_at.is_(None)
        )
        assert conn.execute(still).scalar_one() == 1


def test_credentials_never_reach_the_logs_nor_repr(
    store: BRouteStore, caplog: pytest.LogCaptureFixture
) -> None:
    # openami's logger does not propagate once a command configured it: listen on it
    openami_log = logging.getLogger("openami")
    openami_log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.DEBUG, logger="openami"):
            issued = store.issue(1, T0)
            store.lookup(issued.rbid)
            again = store.issue(1, T0 + timedelta(minutes=1))
            store.revoke(1, T0 + timedelta(minutes=2))
    finally:
        openami_log.removeHandler(caplog.handler)
    fields = [str(getattr(r, "fields", "")) for r in caplog.records]
    text = caplog.text + "".join(fields) + repr(issued) + repr(again) + repr(store.history(1))
    for secret in (issued.rbid, issued.password, again.rbid, again.password):
        assert secret not in text
    assert "issued for meter 1" in caplog.text  # the events are logged, not what was issued
    assert isinstance(issued, BRouteCredentials)


def test_store_opens_in_a_data_dir_next_to_the_registry(tmp_path: Path) -> None:
    with BRouteStore.open(data_dir=tmp_path / "data") as store, pytest.raises(RegistryError):
        store.issue(1)  # an empty registry: no meters yet
    assert (tmp_path / "data" / "registry.db").exists()
    with pytest.raises(LocalProtocolError):
        BRouteStore.open()


def test_a_database_of_another_layout_is_refused(tmp_path: Path) -> None:
    from sqlalchemy import MetaData

    engine = make_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    ensure_schema(engine, MetaData(), "mdm.broute", 99)
    with pytest.raises(StoreError, match="version 99"):
        BRouteStore(engine)
    engine.dispose()
