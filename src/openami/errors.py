"""The errors openami raises on purpose, all under one root.

The tree::

    AmiError                     root: catch this to catch everything openami raises on purpose
    ├── ConfigError              a setting (TOML file, OPENAMI_* variable, flag) is invalid
    ├── ProtocolError            a protocol rule was broken; the subclass says by which side
    │   ├── LocalProtocolError   our side asked for something the protocol forbids
    │   ├── RemoteProtocolError  the peer sent something the protocol forbids
    │   │   ├── DecodeError      bytes that do not decode (truncated, bad tag, length or value)
    │   │   └── SecurityError    failed authentication, unknown sender, replayed or old counter
    │   └── SchemaError          an XML document does not conform to its schema (Green Button
    │                            ESPI): whose document it was says which side was wrong
    ├── TransportError           a transport could not send or receive
    ├── BusError                 the bus refused a publish or an acknowledgement
    ├── StoreError               storage could not persist or read data
    ├── RegistryError            a registry change breaks a rule (overlapping contracts, a
    │                            unit serving two meters, an unknown meter)
    └── BenchmarkError           an unknown benchmark, or one that could not run

Decoders raise only ``DecodeError`` (or ``SecurityError`` where keys are involved) on any
input: never ``IndexError``, ``struct.error`` or ``UnicodeDecodeError``.
"""

from __future__ import annotations

__all__ = [
    "AmiError",
    "BenchmarkError",
    "BusError",
    "ConfigError",
    "DecodeError",
    "LocalProtocolError",
    "ProtocolError",
    "RegistryError",
    "RemoteProtocolError",
    "SchemaError",
    "SecurityError",
    "StoreError",
    "TransportError",
]


class AmiError(Exception):
    """Root of every error openami raises on purpose."""


class ConfigError(AmiError):
    """A configuration value is invalid; the message names the value and where it came from."""


class ProtocolError(AmiError):
    """A protocol rule was broken."""


class LocalProtocolError(ProtocolError):
    """Our side tried to do something the protocol forbids (a bug in the caller)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol forbids."""


class DecodeError(RemoteProtocolError):
    """Received bytes do not decode."""


class SecurityError(RemoteProtocolError):
    """Authentication failed, the sender is unknown, or its invocation counter was replayed."""


class SchemaError(ProtocolError):
    """An XML document does not conform to its schema; the message names the first violation
    and where it is. It is neither local nor remote by itself: a document we rendered that
    fails is our bug, one a peer sent is the peer's."""


class TransportError(AmiError):
    """A transport could not send or receive."""


class BusError(AmiError):
    """The message bus refused a publish or an acknowledgement."""


class StoreError(AmiError):
    """Storage could not persist or read data."""


class RegistryError(AmiError):
    """A change to the MDMS registry breaks one of its rules (two contracts in force at once
    on a usage point, a gap between contracts, a communication unit serving two meters, a
    meter or contract that does not exist); the message names what and when."""


class BenchmarkError(AmiError):
    """An unknown benchmark, or a benchmark that could not run."""
