"""The first registry's record, kept so callers written against it (the demo) keep working.

A ``MeterRecord`` is what the fleet simulator knows of a meter; ``site()`` turns it into the
CIM-shaped records: the meter, its unit (at the meter's IP address) and a usage point of its
own carrying the household traits validation needs (PV, all-electric, occupants).
"""

from __future__ import annotations

from dataclasses import dataclass

from openami.mdm.registry.model import ComModule, Meter, MeterKind, MeterSite, UsagePoint

__all__ = ["MeterRecord"]


@dataclass(frozen=True)
class MeterRecord:
    meter_id: int
    serial: str
    system_title: bytes
    ip_address: str
    household_size: int
    all_electric: bool
    pv_kw: float

    def site(self, *, kind: MeterKind = MeterKind.INTEGRATED, area: str = "") -> MeterSite:
        """The meter as registered: mRIDs derive from the serial, so registering the same
        record twice names the same things."""
        return MeterSite(
            meter=Meter(
                meter_id=self.meter_id,
                mrid=f"meter-{self.serial}",
                serial=self.serial,
                system_title=self.system_title,
                kind=kind,
            ),
            com_module=ComModule(mrid=f"unit-{self.serial}", address=self.ip_address),
            usage_point=UsagePoint(
                mrid=f"up-{self.serial}",
                area=area,
                generation_kw=self.pv_kw,
                all_electric=self.all_electric,
                occupants=self.household_size,
            ),
        )
