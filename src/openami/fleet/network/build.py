"""Build the network model of one area from its meters' positions."""

from __future__ import annotations

from openami.errors import ConfigError
from openami.fleet.network.base import (
    AreaNetwork,
    BackhaulKind,
    FloatArray,
    Medium,
    check_positions,
    require,
)
from openami.fleet.network.mesh import MeshNetwork, MeshParams
from openami.fleet.network.plc import PlcNetwork, PlcParams
from openami.fleet.network.star import StarNetwork, StarParams
from openami.fleet.network.wan import BackhaulParams, default_backhaul

__all__ = ["build_area_network"]

_PARAMS: dict[Medium, type[MeshParams | StarParams | PlcParams]] = {
    Medium.RF_MESH: MeshParams,
    Medium.STAR: StarParams,
    Medium.PLC: PlcParams,
}


def build_area_network(
    medium: Medium,
    positions_m: FloatArray,
    backhaul: BackhaulKind,
    params: MeshParams | StarParams | PlcParams | None,
    seed: int,
    area: str,
    *,
    backhaul_params: BackhaulParams | None = None,
    access_points_m: FloatArray | None = None,
) -> AreaNetwork:
    """The network of ``area``: its meters at ``positions_m`` (metres, shape (n, 2)) reached
    over ``medium``, its access points over ``backhaul``.

    ``params`` None takes the medium's documented defaults; ``backhaul_params`` None the
    defaults of ``backhaul``. Access points are placed from the positions unless
    ``access_points_m`` gives them (a planner's chosen poles). The same ``seed`` gives the same
    topology and the same per-meter draws (shadowing, wiring).
    """
    try:
        medium = Medium(medium)
    except ValueError:
        msg = f"medium must be one of {[m.value for m in Medium]}, got {medium!r}"
        raise ConfigError(msg) from None
    try:
        backhaul = BackhaulKind(backhaul)
    except ValueError:
        msg = f"backhaul must be one of {[b.value for b in BackhaulKind]}, got {backhaul!r}"
        raise ConfigError(msg) from None
    expected = _PARAMS[medium]
    if params is None:
        params = expected()
    require(
        isinstance(params, expected),
        f"params for medium {medium.value!r} must be {expected.__name__}, "
        f"got {type(params).__name__}",
    )
    if backhaul_params is None:
        backhaul_params = default_backhaul(backhaul)
    require(
        backhaul_params.kind == backhaul,
        f"backhaul_params.kind {backhaul_params.kind.value!r} differs from backhaul "
        f"{backhaul.value!r}",
    )
    pos = check_positions(positions_m)
    if isinstance(params, MeshParams):
        return MeshNetwork(
            pos, params, backhaul_params, seed=seed, area=area, access_points_m=access_points_m
        )
    if isinstance(params, StarParams):
        return StarNetwork(
            pos, params, backhaul_params, seed=seed, area=area, access_points_m=access_points_m
        )
    return PlcNetwork(
        pos, params, backhaul_params, seed=seed, area=area, access_points_m=access_points_m
    )
