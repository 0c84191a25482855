"""The simulated world the head-end talks to, without any I/O: meters and their networks.

``step()`` closes the next interval for every meter and returns what leaves the meters:
interval pushes (each at a random delay of up to ``push_spread_s`` after the interval end, so
the network is not flooded at once), co-metered gas and water indexes on the hour, and the
events of any fault that happened. Each datagram has already crossed its area's field-area
network and backhaul: what comes out is what reaches the head-end, with its arrival time;
what the network lost is counted and never sent. ``request()`` carries a head-end request
down to a meter and its answer back up the same way. The caller moves the bytes: over a real
socket (``openami fleet run``) or the in-memory network (``openami demo``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec
import numpy as np
import numpy.typing as npt

from openami.fleet.faults import Action, FaultPlan
from openami.fleet.fleet import ADDRESS_BASE, MEDIA, Fleet
from openami.fleet.meter import MeterServer
from openami.fleet.network import (
    AreaNetwork,
    BackhaulKind,
    Jamming,
    Medium,
    MeshParams,
    PlcParams,
    StarParams,
    build_area_network,
)
from openami.fleet.noise import hash_uniform
from openami.fleet.pushgen import PushEncoder
from openami.fleet.scenario import FaultKind, Scenario
from openami.protocols.dlms.notification import EventCode

__all__ = ["FleetSimulator", "Outgoing", "StepReport"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]
_S_SPREAD = 101  # noise stream of the push delays
_PARAMS: dict[str, type[MeshParams | StarParams | PlcParams]] = {
    "rf_mesh": MeshParams,
    "star": StarParams,
    "plc": PlcParams,
}


@dataclass(frozen=True)
class Outgoing:
    """Datagrams that reach the head-end, with when they arrive (Unix seconds, simulated).
    Fixed-length pushes come as the rows of ``rows``; events one by one in ``datagrams``."""

    arrive_s: FloatArray
    meter: IntArray
    rows: U8 | None = None
    datagrams: list[bytes] | None = None

    def __len__(self) -> int:
        return int(self.meter.shape[0])

    def source_ip(self, fleet: Fleet) -> npt.NDArray[np.uint32]:
        return (ADDRESS_BASE + fleet.comm_unit[self.meter]).astype(np.uint32)


@dataclass
class StepReport:
    """One interval's traffic. ``pushes`` and ``delivered`` count the same datagrams (interval
    and co-metering pushes, and events): the first as they left the meters, the second those
    of them that reached the head-end (the rows of ``step()``'s ``Outgoing``); the network
    lost the difference."""

    number: int  # the interval just closed
    pushes: int = 0  # left the meters
    delivered: int = 0  # reached the head-end
    events: Counter[str] = field(default_factory=Counter)


class FleetSimulator:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.fleet = Fleet(scenario)
        self.encoder = PushEncoder(self.fleet)
        self.server = MeterServer(self.fleet)
        self.rng = np.random.default_rng([scenario.seed, 4059])
        self.plan = FaultPlan(scenario, self.fleet.area)
        f = self.fleet
        # one network per (area, medium); each meter knows its group and its local index
        self.group = (f.area.astype(np.int64) * len(MEDIA) + f.medium).astype(np.int64)
        self.local = np.zeros(f.n, dtype=np.int64)
        self.networks: dict[int, AreaNetwork] = {}
        self.group_names: dict[int, tuple[str, str]] = {}
        for g in np.unique(self.group).tolist():
            members = np.flatnonzero(self.group == g)
            self.local[members] = np.arange(members.size)
            area = scenario.area[g // len(MEDIA)]
            medium = MEDIA[g % len(MEDIA)]
            overrides = area.network.get(medium)
            params = None if overrides is None else msgspec.convert(overrides, _PARAMS[medium])
            self.networks[g] = build_area_network(
                Medium(medium),
                f.position_m[members],
                BackhaulKind(area.setting("backhaul")),
                params,
                seed=scenario.seed * 1000 + g,
                area=area.name,
            )
            self.group_names[g] = (area.name, medium)
        for fault in self.plan.jamming():
            for g, net in self.networks.items():
                if fault.area in (None, self.group_names[g][0]):
                    net.add_jamming(
                        Jamming(
                            self.group_names[g][0],
                            fault.at.timestamp(),
                            fault.end.timestamp(),
                            fault.delivery_factor,
                        )
                    )
        self.sent_by_group: Counter[int] = Counter()
        self.delivered_by_group: Counter[int] = Counter()

    @property
    def now_s(self) -> int:
        """End of the last closed interval (Unix seconds)."""
        return self.fleet.interval_end(self.fleet.now)

    # -- the network ---------------------------------------------------------------------

    def _transmit(
        self, meters: IntArray, send_s: FloatArray, load_w: FloatArray | None = None
    ) -> tuple[npt.NDArray[np.bool_], FloatArray]:
        delivered = np.zeros(meters.shape, dtype=bool)
        latency = np.full(meters.shape, np.nan)
        groups = self.group[meters]
        for g in np.unique(groups).tolist():
            sel = np.flatnonzero(groups == g)
            result = self.networks[g].transmit(
                self.local[meters[sel]],
                send_s[sel],
                self.rng,
                None if load_w is None else load_w[sel],
            )
            delivered[sel] = result.delivered
            latency[sel] = result.latency_s
            self.sent_by_group[g] += int(sel.size)
            self.delivered_by_group[g] += int(result.delivered.sum())
        return delivered, latency

    def _fail(self, meters: IntArray, dead: bool) -> None:
        groups = self.group[meters]
        for g in np.unique(groups).tolist():
            local = self.local[meters[groups == g]]
            if dead:
                self.networks[g].fail(local)
            else:
                self.networks[g].restore(local)

    # -- one interval --------------------------------------------------------------------

    def step(self) -> tuple[list[Outgoing], StepReport]:
        """Close the next interval; return what reaches the head-end."""
        f = self.fleet
        number = f.now + 1
        end_s = f.interval_end(number)
        report = StepReport(number)
        out: list[Outgoing] = []
        for action in self.plan.due(end_s):
            events = self._apply(action, report)
            if events is not None:
                out.append(events)
        values = f.advance()
        meters = np.flatnonzero(f.powered)
        # the meter's own clock decides when it pushes; the spread is per meter and interval
        elapsed = end_s - f.start.timestamp()
        offset = f.clock_offset_s[meters] + f.drift_ppm[meters] * 1e-6 * elapsed
        spread = self.scenario.push_spread_s * hash_uniform(
            self.scenario.seed, _S_SPREAD, f.meter_ids[meters], number
        )
        send_s = end_s - offset + spread
        load_w = (values.import_wh[meters] * (3600.0 / f.step_s)).astype(np.float64)
        rows = self.encoder.intervals(values, meters)
        out.append(self._send(report, meters, send_s, rows, load_w))
        if end_s % 3600 == 0:  # gas and water indexes once an hour
            utility = f.utility_meters[f.powered[f.utility_meters]]
            if utility.size:
                # with the status of the same meter's interval push (clock invalid, say)
                rows = self.encoder.utilities(values, utility, f.gas_index, f.water_index)
                # right after the same meter's interval push, spread the same way
                at = send_s[np.searchsorted(meters, utility)] + 1.0
                out.append(self._send(report, utility, at, rows))
        return out, report

    def _push(
        self,
        report: StepReport,
        meters: IntArray,
        send_s: FloatArray,
        load_w: FloatArray | None = None,
    ) -> tuple[npt.NDArray[np.bool_], FloatArray]:
        """One datagram from each of ``meters`` into the network, counted in ``report`` as
        it leaves and, where it is not lost, as it arrives."""
        delivered, latency = self._transmit(meters, send_s, load_w)
        report.pushes += int(meters.size)
        report.delivered += int(delivered.sum())
        return delivered, latency

    def _send(
        self,
        report: StepReport,
        meters: IntArray,
        send_s: FloatArray | float,
        rows: U8,
        load_w: FloatArray | None = None,
    ) -> Outgoing:
        send = np.broadcast_to(np.asarray(send_s, dtype=np.float64), meters.shape)
        delivered, latency = self._push(report, meters, send, load_w)
        return Outgoing(send[delivered] + latency[delivered], meters[delivered], rows[delivered])

    def _events(
        self,
        report: StepReport,
        meters: IntArray,
        at_s: float,
        code: EventCode,
        values: IntArray | None = None,
    ) -> Outgoing:
        moment = datetime.fromtimestamp(at_s, tz=UTC)
        send = np.full(meters.shape, at_s)
        delivered, latency = self._push(report, meters, send)
        chosen = np.flatnonzero(delivered)
        value = self.fleet.import_register[meters] if values is None else values
        datagrams = [
            self.encoder.event(int(meters[k]), moment, code, int(value[k])) for k in chosen.tolist()
        ]
        return Outgoing(send[chosen] + latency[chosen], meters[chosen], datagrams=datagrams)

    def _apply(self, action: Action, report: StepReport) -> Outgoing | None:
        f, m, at = self.fleet, action.meters, action.at_s
        kind = action.fault.kind
        report.events[f"{kind.value}:{'start' if action.starting else 'end'}"] += int(m.size)
        if kind is FaultKind.OUTAGE:
            if action.starting:
                # sent before it dies
                last_gasp = self._events(report, m, at, EventCode.POWER_DOWN)
                f.set_power(m, False)
                self._fail(m, True)
                return last_gasp
            f.set_power(m, True)
            self._fail(m, False)
            return self._events(report, m, at, EventCode.POWER_UP)
        if kind is FaultKind.NODE_FAILURE:
            self._fail(m, action.starting)
            return None
        if kind is FaultKind.TAMPER_COVER:
            return self._events(report, m, at, EventCode.TERMINAL_COVER_OPENED)
        if kind is FaultKind.TAMPER_MAGNETIC:
            return self._events(report, m, at, EventCode.STRONG_MAGNETIC_FIELD)
        if kind is FaultKind.CLOCK_ERROR:
            f.set_clock_error(m, action.fault.offset_s)
            return self._events(report, m, at, EventCode.CLOCK_ERROR)
        if kind is FaultKind.REVERSE_FLOW:
            no_pv = m[f.traits.pv_kw[m] == 0]
            f.set_reverse_flow(no_pv, action.starting)
            if not action.starting:
                return None
            return self._events(report, no_pv, at, EventCode.REVERSE_FLOW)
        if kind is FaultKind.COMM_UNIT_SWAP:
            swapped = m[f.separated[m]]
            f.swap_comm_unit(swapped)
            return self._events(
                report, swapped, at, EventCode.COMM_UNIT_REPLACED, f.comm_unit[swapped]
            )
        return None

    # -- requests from the head-end ------------------------------------------------------

    def request(self, meter: int, payload: bytes, at_s: float) -> tuple[float, bytes] | None:
        """A request sent to ``meter`` at ``at_s``: its answer and when the answer reaches
        the head-end, or ``None`` when the network or the meter dropped it."""
        one = np.array([meter], dtype=np.int64)
        down, latency = self._transmit(one, np.array([at_s]))
        if not down[0]:
            return None
        answer = self.server.handle_for(meter, payload)
        if answer is None:
            return None
        reply_at = at_s + float(latency[0])
        up, back = self._transmit(one, np.array([reply_at]))
        if not up[0]:
            return None
        return reply_at + float(back[0]), answer

    def access_points(self) -> IntArray:
        """Per meter, a fleet-wide number for the access point (concentrator, base station)
        that serves it now, as the utility's network management knows it; -1 where a mesh
        meter has no route. The head-end paces collection per access point with it."""
        out = np.full(self.fleet.n, -1, dtype=np.int64)
        for g, net in self.networks.items():
            members = np.flatnonzero(self.group == g)
            local = net.access_point[self.local[members]]
            out[members] = np.where(local >= 0, g * 1_000_000 + local, -1)
        return out

    def delivery_by_group(self) -> list[tuple[str, str, int, int]]:
        """(area, medium, sent, delivered) for every network, for progress displays."""
        return [
            (*self.group_names[g], self.sent_by_group[g], self.delivered_by_group[g])
            for g in sorted(self.networks)
        ]
