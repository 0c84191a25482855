"""Fixtures of the billing tests: the shipped tariff book and its August 2024 calendar."""

from __future__ import annotations

import pytest

from openami.mdm.billing import BillingCalendar, BillingMonth, TariffBook, load_tariffs


@pytest.fixture(scope="session")
def book() -> TariffBook:
    return load_tariffs()


@pytest.fixture(scope="session")
def august(book: TariffBook) -> BillingCalendar:
    return BillingCalendar.for_month(book, BillingMonth(2024, 8))
