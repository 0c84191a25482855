"""The COSEM object model of one simulated Japanese residential meter.

Built from the interface-class tables, with values read from the fleet's columns, so what a
client reads over DLMS is what the simulation holds: registers and load profile agree with
each other and with the pushes of the same meter. Time is passed in (``now``), so the same
model serves the accelerated demo and lab meters on the host's clock.

| object                       | class | OBIS             |
|------------------------------|-------|------------------|
| clock                        | 8     | 0.0.1.0.0.255    |
| +A / -A cumulative energy    | 3     | 1.0.1.8.0.255 / 1.0.2.8.0.255 (Wh) |
| instantaneous import power   | 3     | 1.0.1.7.0.255 (W) |
| voltage L1, current L1       | 3     | 1.0.32.7.0.255 (V), 1.0.31.7.0.255 (A) |
| load profile                 | 7     | 1.0.99.1.0.255 (capture period 1800 s, changeable) |
| AMR profile status, serial   | 1     | 0.0.96.10.1.255, 0.0.96.1.0.255 |
| push setup                   | 40    | 0.0.25.9.0.255   |
| disconnect control           | 70    | 0.0.96.3.10.255  |
| limiter (contract current)   | 71    | 0.0.17.0.0.255   |
| security setup               | 64    | 0.0.43.0.0.255   |
| association LN, SAP list     | 15, 17| 0.0.40.0.0.255, 0.0.41.0.0.255 |
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import numpy as np

from openami.errors import DecodeError
from openami.fleet.fleet import Fleet, MeterHistory
from openami.fleet.meter_services import (
    KeyRing,
    activity_calendar,
    demand_registers,
    disconnect_schedule,
    image_transfer,
    key_transfer,
)
from openami.protocols.dlms import obis
from openami.protocols.dlms.axdr import Data, DataType
from openami.protocols.dlms.cosem.classes import Access
from openami.protocols.dlms.cosem.model import (
    CosemObject,
    ObjectModel,
    select_by_entry,
    select_by_range,
)
from openami.protocols.dlms.cosem.server import object_list
from openami.protocols.dlms.cosem_datetime import decode_datetime, encode_datetime
from openami.protocols.dlms.profile import CAPTURE_OBJECTS
from openami.protocols.dlms.services import (
    ActionResult,
    AttributeDescriptor,
    DataAccessResult,
    Selection,
)

__all__ = ["VOLATILE_WRITES", "build_meter_model"]

JST = timezone(timedelta(hours=9))
UNIT_WH, UNIT_W, UNIT_V, UNIT_A = 30, 27, 35, 33
CONTROL_DISCONNECTED, CONTROL_CONNECTED = 0, 1
# Writes that act on the fleet's state once (setting the clock) rather than store a value:
# the meter server must not write them again into the next object model of the meter.
VOLATILE_WRITES = frozenset({AttributeDescriptor(8, obis.CLOCK.to_bytes(), 2)})


def _ln(text: str) -> bytes:
    return obis.ObisCode.parse(text).to_bytes()


def _u32(value: int) -> Data:
    return Data(DataType.DOUBLE_LONG_UNSIGNED, int(value))


def _scaler_unit(scaler: int, unit: int) -> Data:
    return Data(DataType.STRUCTURE, (Data(DataType.INTEGER, scaler), Data(DataType.ENUM, unit)))


def _capture_def(class_id: int, ln: bytes, attribute: int) -> Data:
    return Data(
        DataType.STRUCTURE,
        (
            Data(DataType.LONG_UNSIGNED, class_id),
            Data(DataType.OCTET_STRING, ln),
            Data(DataType.INTEGER, attribute),
            Data(DataType.LONG_UNSIGNED, 0),
        ),
    )


def build_meter_model(
    fleet: Fleet,
    index: int,
    now: Callable[[], datetime],
    client_title: bytes = b"OAMHES01",
    ring: KeyRing | None = None,
    true_time: Callable[[], datetime] | None = None,
) -> ObjectModel:
    """The object model of meter ``index``; intervals ending after ``now()`` do not exist yet.
    Built when something talks to the meter; its state lives in the fleet's columns. A time
    written to the clock is compared with ``true_time()`` (``now()`` when not given) to find
    the clock's remaining error."""
    PROFILE_DEPTH = fleet.profile_depth
    step = fleet.step_s
    captures = [(c, ln.to_bytes(), a) for c, ln, a in CAPTURE_OBJECTS]

    def closed() -> int:
        """Number of the last interval closed at ``now()``."""
        return int(now().timestamp()) // step

    def recent(count: int) -> MeterHistory:
        t = closed()
        return fleet.history(index, t - count + 1, t, now=t)

    def register(values: str, base: int) -> Callable[[Selection | None], Data | DataAccessResult]:
        def read(selection: Selection | None) -> Data | DataAccessResult:
            if selection is not None:
                return DataAccessResult.SCOPE_OF_ACCESS_VIOLATED
            last = getattr(recent(1), values)
            return _u32(int(last[-1]) if last.size else base)

        return read

    def rows() -> list[tuple[Data, ...]]:
        h = recent(PROFILE_DEPTH)
        out: list[tuple[Data, ...]] = []
        for k in range(h.numbers.size):
            end = datetime.fromtimestamp(int(h.numbers[k]) * step, tz=UTC).astimezone(JST)
            out.append(
                (
                    Data(DataType.OCTET_STRING, encode_datetime(end)),
                    Data(DataType.UNSIGNED, int(h.status[k])),
                    _u32(h.import_register[k]),
                    _u32(h.export_register[k]),
                    _u32(h.import_wh[k]),
                    _u32(h.export_wh[k]),
                )
            )
        return out

    def buffer(selection: Selection | None) -> Data | DataAccessResult:
        if selection is None:
            return Data(DataType.ARRAY, tuple(Data(DataType.STRUCTURE, r) for r in rows()))
        if selection.selector == 1:
            return select_by_range(rows(), captures, selection.parameters)
        if selection.selector == 2:
            return select_by_entry(rows(), selection.parameters)
        return DataAccessResult.SCOPE_OF_ACCESS_VIOLATED

    def clock_time(selection: Selection | None) -> Data | DataAccessResult:
        return Data(DataType.OCTET_STRING, encode_datetime(now().astimezone(JST)))

    def set_clock(value: Data) -> DataAccessResult:
        # a time sync: the clock takes the written time; what differs from true time (the
        # request's age) stays as the clock's offset, and a clock fault is cleared
        if value.type not in (DataType.OCTET_STRING, DataType.DATE_TIME) or not isinstance(
            value.value, bytes
        ):
            return DataAccessResult.TYPE_UNMATCHED
        try:
            moment = decode_datetime(value.value)
        except DecodeError:
            return DataAccessResult.TYPE_UNMATCHED
        # ``true_time``: the time line of the client that set it, where it is not the meters'
        offset = (moment - (true_time or now)()).total_seconds()
        fleet.sync_clock(np.array([index], dtype=np.int64), offset, now=closed())
        return DataAccessResult.SUCCESS

    def watts() -> int:
        last = recent(1).import_wh
        return int(last[-1]) * 3600 // step if last.size else 0  # average W, last interval

    def power(selection: Selection | None) -> Data | DataAccessResult:
        return _u32(watts())

    def current(selection: Selection | None) -> Data | DataAccessResult:
        # at 101.0 V, in 0.01 A
        return Data(DataType.LONG_UNSIGNED, min(65535, watts() * 100 * 10 // 1010))

    # The switch's state is the fleet's column, so it outlives this object.
    def output_state(_s: Selection | None) -> Data | DataAccessResult:
        return Data(DataType.BOOLEAN, bool(fleet.connected[index]))

    def control_state(_s: Selection | None) -> Data | DataAccessResult:
        connected = bool(fleet.connected[index])
        return Data(DataType.ENUM, CONTROL_CONNECTED if connected else CONTROL_DISCONNECTED)

    disconnect = CosemObject(
        70,
        _ln("0.0.96.3.10.255"),
        values={4: Data(DataType.ENUM, 4)},
        readers={2: output_state, 3: control_state},
    )

    def switch(connected: bool) -> Callable[[Data | None], tuple[ActionResult, Data | None]]:
        def act(_parameters: Data | None) -> tuple[ActionResult, Data | None]:
            # from the next interval of this meter's clock: the past stays as it was
            fleet.set_connected(np.array([index]), connected, now=closed())
            return ActionResult.SUCCESS, None

        return act

    disconnect.invokers = {1: switch(False), 2: switch(True)}

    profile = CosemObject(
        7,
        obis.LOAD_PROFILE.to_bytes(),
        values={
            3: Data(DataType.ARRAY, tuple(_capture_def(*c) for c in captures)),
            4: _u32(fleet.interval_s),
            5: Data(DataType.ENUM, 1),  # fifo
            6: _capture_def(0, bytes(6), 0),
            8: _u32(PROFILE_DEPTH),
        },
        readers={2: buffer, 7: lambda _s: _u32(recent(PROFILE_DEPTH).numbers.size)},
    )

    def capture_period(value: Data) -> DataAccessResult:
        if value.type is not DataType.DOUBLE_LONG_UNSIGNED or value.value not in (
            300,
            900,
            1800,
            3600,
        ):
            return DataAccessResult.TYPE_UNMATCHED
        profile.values[4] = value
        return DataAccessResult.SUCCESS

    profile.writers = {4: capture_period}
    read_only = {2: Access.READ}  # meters do not let anyone write their energy registers
    model = ObjectModel(
        [
            CosemObject(
                8,
                obis.CLOCK.to_bytes(),
                values={
                    3: Data(DataType.LONG, -540),
                    4: Data(DataType.UNSIGNED, 0),
                    5: Data(DataType.OCTET_STRING, NOT_SPECIFIED_DATETIME),
                    6: Data(DataType.OCTET_STRING, NOT_SPECIFIED_DATETIME),
                    7: Data(DataType.INTEGER, 0),
                    8: Data(DataType.BOOLEAN, False),  # Japan keeps no daylight saving time
                    9: Data(DataType.ENUM, 1),  # internal crystal
                },
                readers={2: clock_time},
                writers={2: set_clock},
            ),
            CosemObject(
                3,
                obis.ACTIVE_ENERGY_IMPORT.to_bytes(),
                values={3: _scaler_unit(0, UNIT_WH)},
                readers={2: register("import_register", int(fleet.import_base[index]))},
                access=read_only,
            ),
            CosemObject(
                3,
                obis.ACTIVE_ENERGY_EXPORT.to_bytes(),
                values={3: _scaler_unit(0, UNIT_WH)},
                readers={2: register("export_register", int(fleet.export_base[index]))},
                access=read_only,
            ),
            CosemObject(
                3,
                _ln("1.0.1.7.0.255"),
                values={3: _scaler_unit(0, UNIT_W)},
                readers={2: power},
                access=read_only,
            ),
            CosemObject(
                3,
                _ln("1.0.32.7.0.255"),
                values={2: Data(DataType.LONG_UNSIGNED, 1010), 3: _scaler_unit(-1, UNIT_V)},
                access=read_only,
            ),
            CosemObject(
                3,
                _ln("1.0.31.7.0.255"),
                values={3: _scaler_unit(-2, UNIT_A)},
                readers={2: current},
                access=read_only,
            ),
            profile,
            CosemObject(
                1,
                obis.AMR_PROFILE_STATUS.to_bytes(),
                values={2: Data(DataType.UNSIGNED, 0)},
                access=read_only,
            ),
            CosemObject(
                1,
                _ln("0.0.96.1.0.255"),
                values={2: Data(DataType.OCTET_STRING, fleet.serial(index).encode())},
                access=read_only,
            ),
            CosemObject(
                40,
                obis.PUSH_SETUP_INTERVAL.to_bytes(),
                values={
                    2: Data(DataType.ARRAY, tuple(_capture_def(*c) for c in captures)),
                    3: Data(
                        DataType.STRUCTURE,
                        (
                            Data(DataType.ENUM, 1),  # UDP
                            Data(DataType.OCTET_STRING, b"10.255.255.1:4059"),
                            Data(DataType.ENUM, 0),
                        ),
                    ),  # A-XDR APDU
                    4: Data(DataType.ARRAY, ()),
                    5: Data(DataType.LONG_UNSIGNED, 300),
                    6: Data(DataType.UNSIGNED, 0),
                    7: Data(DataType.LONG_UNSIGNED, 0),
                },
            ),
            disconnect,
            CosemObject(
                71,
                _ln("0.0.17.0.0.255"),
                values={
                    2: _capture_def(3, _ln("1.0.31.7.0.255"), 2),
                    3: Data(DataType.LONG_UNSIGNED, 3000),
                    4: Data(DataType.LONG_UNSIGNED, 3000),  # contract current 30 A (0.01 A)
                    5: Data(DataType.LONG_UNSIGNED, 3000),
                    6: _u32(10),
                    7: _u32(10),
                    8: Data(
                        DataType.STRUCTURE,
                        (
                            Data(DataType.LONG_UNSIGNED, 0),
                            Data(DataType.OCTET_STRING, NOT_SPECIFIED_DATETIME),
                            _u32(0),
                        ),
                    ),
                    9: Data(DataType.ARRAY, ()),
                    10: Data(DataType.BOOLEAN, False),
                    11: Data(DataType.STRUCTURE, (_script(), _script())),
                },
            ),
            CosemObject(
                64,
                _ln("0.0.43.0.0.255"),
                values={
                    2: Data(DataType.ENUM, 3),  # all messages authenticated and encrypted
                    3: Data(DataType.ENUM, 0),  # security suite 0 (AES-GCM-128)
                    4: Data(DataType.OCTET_STRING, client_title),
                    5: Data(DataType.OCTET_STRING, fleet.system_title(index)),
                },
            ),
            CosemObject(
                17,
                _ln("0.0.41.0.0.255"),
                values={
                    2: Data(
                        DataType.ARRAY,
                        (
                            Data(
                                DataType.STRUCTURE,
                                (
                                    Data(DataType.LONG_UNSIGNED, 1),
                                    Data(DataType.OCTET_STRING, fleet.serial(index).encode()),
                                ),
                            ),
                        ),
                    )
                },
            ),
        ]
    )
    for extra in (
        *demand_registers(fleet, index, closed, now),
        image_transfer(),
        activity_calendar(),
        disconnect_schedule(),
    ):
        model.add(extra)
    security_setup = model.find(64, _ln("0.0.43.0.0.255"))
    if ring is not None and security_setup is not None:
        key_transfer(ring, security_setup)
    association = CosemObject(
        15,
        _ln("0.0.40.0.0.255"),
        values={
            3: Data(
                DataType.STRUCTURE, (Data(DataType.INTEGER, 1), Data(DataType.LONG_UNSIGNED, 1))
            ),
            4: Data(DataType.OCTET_STRING, bytes.fromhex("60857405080103")),
            6: Data(DataType.OCTET_STRING, bytes.fromhex("60857405080205")),
            8: Data(DataType.ENUM, 2),  # associated
            9: Data(DataType.OCTET_STRING, _ln("0.0.43.0.0.255")),
        },
        readers={2: lambda _s: object_list(model)},
    )
    model.add(association)
    return model


NOT_SPECIFIED_DATETIME = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x00\x00"


def _script() -> Data:
    return Data(
        DataType.STRUCTURE, (Data(DataType.OCTET_STRING, bytes(6)), Data(DataType.LONG_UNSIGNED, 0))
    )
