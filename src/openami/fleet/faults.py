"""The scenario's faults as a timeline of actions on the fleet and its networks.

Each ``[[fault]]`` picks its meters once (seeded, so a run repeats), then acts at its start
and, when it lasts, again at its end. Actions that fall inside an interval are applied before
that interval closes: a meter that loses power during 14:00-14:30 records nothing for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from openami.fleet.scenario import Fault, FaultKind, Scenario

__all__ = ["Action", "FaultPlan"]

IntArray = npt.NDArray[np.int64]
# faults that end (and are undone) at the end of their window; the others happen once at
# their start (jamming: the networks apply its window by time themselves)
_LASTING = frozenset({FaultKind.OUTAGE, FaultKind.REVERSE_FLOW, FaultKind.NODE_FAILURE})


@dataclass(frozen=True)
class Action:
    at_s: float  # Unix seconds
    fault: Fault
    starting: bool  # the fault's start (True) or its end
    meters: IntArray  # fleet indices


class FaultPlan:
    """Actions in time order; ``due(until_s)`` hands out those before ``until_s`` once."""

    def __init__(self, scenario: Scenario, area_of_meter: npt.NDArray[np.int16]) -> None:
        names = [a.name for a in scenario.area]
        actions: list[Action] = []
        for k, fault in enumerate(scenario.fault):
            rng = np.random.default_rng([scenario.seed, 7919, k])
            if fault.area is None:
                pool = np.arange(area_of_meter.shape[0], dtype=np.int64)
            else:
                pool = np.flatnonzero(area_of_meter == names.index(fault.area)).astype(np.int64)
            count = min(pool.size, max(1, round(fault.share * pool.size)))
            meters = np.sort(rng.choice(pool, size=count, replace=False))
            start = fault.at.timestamp()
            actions.append(Action(start, fault, True, meters))
            if fault.duration_minutes > 0 and fault.kind in _LASTING:
                actions.append(Action(fault.end.timestamp(), fault, False, meters))
        self.actions = sorted(actions, key=lambda a: (a.at_s, not a.starting))
        self._next = 0

    def jamming(self) -> list[Fault]:
        """Jamming windows: the networks apply them by time themselves."""
        return [a.fault for a in self.actions if a.fault.kind is FaultKind.JAMMING]

    def due(self, until_s: float) -> list[Action]:
        out: list[Action] = []
        while self._next < len(self.actions) and self.actions[self._next].at_s < until_s:
            out.append(self.actions[self._next])
            self._next += 1
        return out
