from __future__ import annotations

import pytest

from openami.bus.factory import bus_from_url
from openami.bus.memory import MemoryBus
from openami.bus.nats import JetStreamBus
from openami.errors import BusError, ConfigError
from tests.conftest import free_port


def test_memory() -> None:
    with bus_from_url("memory") as bus:
        assert isinstance(bus, MemoryBus)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "mem",
        "memory://",
        "redis://127.0.0.1:6379",
        "nats://",
        "nats://127.0.0.1:99999",
        "nats://127.0.0.1:port",
        "nats://127.0.0.1:4222/two/streams",
        "nats://127.0.0.1:4222/a.b",
        "nats://127.0.0.1:4222?stream=AMI",
        "nats://user:secret@127.0.0.1:4222",
        "127.0.0.1:4222",
    ],
)
def test_anything_else_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="bus URL"):
        bus_from_url(url)


def test_an_unreachable_nats_is_a_bus_error() -> None:
    with pytest.raises(BusError, match="connect"):
        bus_from_url(f"nats://127.0.0.1:{free_port()}")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ("nats://localhost", "nats://localhost:4222"),
        (" nats://10.1.2.3:5222/ ", "nats://10.1.2.3:5222"),
        ("nats://[::1]:4222", "nats://[::1]:4222"),
    ],
)
def test_nats_urls_open_a_jetstream_bus(
    monkeypatch: pytest.MonkeyPatch, url: str, expected: str
) -> None:
    """What the factory hands JetStreamBus, checked without a server: connecting for real
    would create the production stream on whatever server runs here. The contract suite
    connects for real on streams of its own."""
    opened: list[str] = []

    class Recorder(MemoryBus):
        def __init__(self, url: str) -> None:
            super().__init__()
            opened.append(url)

    monkeypatch.setattr("openami.bus.nats.JetStreamBus", Recorder)
    bus = bus_from_url(url)
    assert isinstance(bus, Recorder)
    assert opened == [expected]


def test_a_named_stream_gets_its_own_subjects(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[tuple[str, str, str]] = []

    class Recorder(MemoryBus):
        def __init__(self, url: str, stream: str = "AMI", prefix: str = "") -> None:
            super().__init__()
            opened.append((url, stream, prefix))

    monkeypatch.setattr("openami.bus.nats.JetStreamBus", Recorder)
    bus_from_url("nats://127.0.0.1:4222/test_run-7")
    assert opened == [("nats://127.0.0.1:4222", "test_run-7", "test_run-7.")]


def test_the_real_class_is_what_the_factory_names() -> None:
    assert JetStreamBus.__module__ == "openami.bus.nats"
