"""Field-area network (FAN) and WAN backhaul models of an area, vectorised over its meters.

Each medium has its own physics: an RF mesh relays hop by hop, a star cell fades with
distance and congests, power-line carrier follows the household noise of the hour. Each area's
access points then reach the head-end over a backhaul with its own latency, loss and cost.
``build_area_network`` makes the model of one area; ``transmit`` carries a batch of frames.
"""

from __future__ import annotations

from openami.fleet.network.base import AreaNetwork, BackhaulKind, Delivery, Jamming, Medium
from openami.fleet.network.build import build_area_network
from openami.fleet.network.mesh import MeshNetwork, MeshParams
from openami.fleet.network.plc import PlcNetwork, PlcParams
from openami.fleet.network.star import StarNetwork, StarParams
from openami.fleet.network.wan import (
    BackhaulParams,
    apply_backhaul,
    default_backhaul,
    monthly_cost_jpy,
)

__all__ = [
    "AreaNetwork",
    "BackhaulKind",
    "BackhaulParams",
    "Delivery",
    "Jamming",
    "Medium",
    "MeshNetwork",
    "MeshParams",
    "PlcNetwork",
    "PlcParams",
    "StarNetwork",
    "StarParams",
    "apply_backhaul",
    "build_area_network",
    "default_backhaul",
    "monthly_cost_jpy",
]
