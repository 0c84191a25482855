"""Key shipments: every meter's identity and keys as columns, in one file the head-end loads.

A manufacturer delivers the keys of the meters it built; the utility loads them into its
head-ends. Here the shipment is a NumPy ``.npz`` archive of six columns (meter id, system
title, EK, AK, IPv4 address, UDP port), and optionally the access point that serves each
meter (from the utility's network management), written with owner-only permissions,
because it holds every meter's secrets. Loading a million meters takes a fraction of a
second, so each ingest worker reads it at start instead of being sent the keys.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from openami.errors import ConfigError
from openami.headend.keystore import KeyStore

__all__ = ["COLUMNS", "load_shipment", "save_shipment"]

COLUMNS = ("meter_id", "title", "ek", "ak", "ip", "port")
_DTYPES = {
    "meter_id": np.int64,
    "title": np.uint64,
    "ek": np.uint8,
    "ak": np.uint8,
    "ip": np.uint32,
    "port": np.uint16,
}


def save_shipment(path: Path, columns: dict[str, npt.NDArray[np.generic]]) -> None:
    """Write ``columns`` (see ``COLUMNS``) to ``path``, readable by its owner only."""
    missing = set(COLUMNS) - set(columns)
    if missing:
        raise ConfigError(f"key shipment lacks {sorted(missing)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        arrays = {name: np.asarray(columns[name], _DTYPES[name]) for name in COLUMNS}
        if "access_point" in columns:  # optional: which access point serves each meter
            arrays["access_point"] = np.asarray(columns["access_point"], np.int64)
        np.savez(out, allow_pickle=False, **arrays)
    partial.replace(path)  # whole or not at all


def load_shipment(path: Path) -> KeyStore:
    """A key store holding every meter of the shipment at ``path``."""
    try:
        with np.load(path) as archive:
            data = {name: archive[name] for name in COLUMNS}
            access_point = archive.get("access_point", None)
    except FileNotFoundError:
        raise ConfigError(f"key shipment {path} does not exist") from None
    except (KeyError, ValueError, OSError) as exc:
        raise ConfigError(f"key shipment {path} is not readable: {exc}") from None
    keys = KeyStore()
    keys.provision_columns(
        data["meter_id"],
        data["title"],
        data["ek"],
        data["ak"],
        data["ip"],
        data["port"],
        access_point,
    )
    return keys
