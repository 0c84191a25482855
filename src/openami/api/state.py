"""What every route of the service shares: the API store, the data, the rate limiter."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path

from openami.api.access import Limits, RateLimiter
from openami.api.data import DataSource
from openami.api.orders import OrderDesk
from openami.api.store import ApiStore
from openami.api.subscriptions import Webhooks
from openami.bus.base import Bus
from openami.mdm.registry import Registry
from openami.store.sql import make_engine, sqlite_url

__all__ = ["ApiState"]


@dataclass
class ApiState:
    store: ApiStore
    data: DataSource
    limiter: RateLimiter = field(default_factory=RateLimiter)
    orders: OrderDesk | None = None  # service orders, when a head-end bus is given

    @classmethod
    def open(
        cls,
        data_dir: Path,
        db: str | None = None,
        limits: Limits | None = None,
        bus: Bus | None = None,
    ) -> ApiState:
        """The service over ``data_dir`` (its lake and stores) and the database ``db``
        (default: the data dir's ``registry.db``), where the registry and the API's own
        tables live."""
        engine = make_engine(db or sqlite_url(data_dir / "registry.db"))
        registry = Registry(engine)
        limiter = RateLimiter(limits or Limits())
        store = ApiStore(engine)
        desk = OrderDesk(store, bus) if bus is not None else None
        return cls(store, DataSource(data_dir, registry), limiter, desk)

    def close(self) -> None:
        """Release the database connections (a command's state, at its end)."""
        self.data.registry.engine.dispose()

    @cached_property
    def webhooks(self) -> Webhooks:
        """Webhook subscriptions and their outbox, in the API's database."""
        return Webhooks(self.store.engine)

    def meters_of(self, customer: str, at: datetime) -> frozenset[int]:
        found = self.data.customer(customer, at)
        return frozenset(found.meters) if found is not None else frozenset()
