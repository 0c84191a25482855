"""Helpers shared by tests of more than one package."""

from __future__ import annotations

from openami.fleet.fleet import Fleet
from openami.headend.keystore import KeyStore


def provisioned_keys(fleet: Fleet) -> KeyStore:
    """A head-end key store holding every meter of ``fleet``, as from a key shipment."""
    keys = KeyStore()
    for ident in fleet.identities():
        keys.provision(ident.meter_id, ident.system_title, ident.address, ident.ek, ident.ak)
    return keys
