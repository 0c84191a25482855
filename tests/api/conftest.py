"""A demo data dir (200 meters, 2 days), and the API over it on SQLite (the data dir's
registry.db) and on PostgreSQL (the same registry loaded into a fresh schema)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from openami.api.access import Limits
from openami.api.app import create_app
from openami.api.state import ApiState
from openami.cli.demo_registry import register_demo_fleet
from openami.cli.demo_run import DemoParams, demo_scenario, run_demo
from openami.fleet.simulator import FleetSimulator
from openami.mdm.registry import Registry
from openami.store.sql import make_engine

from ..mdm.registry_support import BACKENDS, database_url

PARAMS = DemoParams(meters=200, days=2)
# the limits are tested on their own; elsewhere a test may call as often as it needs
UNLIMITED = Limits(per_second=1e9, burst=10**9, per_day=10**12)


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("api-demo")
    run_demo(DemoParams(meters=PARAMS.meters, days=PARAMS.days, data_dir=data))
    return data


@pytest.fixture(params=BACKENDS)
def api(request: pytest.FixtureRequest, demo_dir: Path, tmp_path: Path) -> Iterator[ApiState]:
    """The API's state on a copy of the demo's data dir, its database on each backend."""
    data = tmp_path / "data"
    shutil.copytree(demo_dir, data)
    if request.param == "sqlite":
        yield ApiState.open(data, limits=UNLIMITED)
        return
    with database_url("postgresql", tmp_path) as url:
        scenario = demo_scenario(PARAMS)
        loader = make_engine(url)
        register_demo_fleet(Registry(loader), FleetSimulator(scenario).fleet, scenario)
        loader.dispose()
        state = ApiState.open(data, url, limits=UNLIMITED)
        yield state
        state.data.registry.engine.dispose()


@pytest.fixture
def client(api: ApiState) -> TestClient:
    return TestClient(create_app(api), follow_redirects=False)
