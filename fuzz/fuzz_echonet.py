"""Fuzz target: ECHONET Lite ``decode_frame`` and ``EchonetNode.handle`` (Route B).

Any input either decodes or raises an ``openami.errors.AmiError``; whatever decodes must
encode back to the same octets. The same input then goes to a node holding a low-voltage
smart meter: ``handle`` must return replies (or none) without raising, and every reply must
re-decode to itself and parse with the client's tables. Anything else (another exception, a
failed assertion, a hang or a memory blow-up) is a crash. Run through ``fuzz/run.sh``, or
alone: ``.venv/bin/python fuzz/fuzz_echonet.py fuzz/corpus/echonet``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime

import atheris

with atheris.instrument_imports(include=["openami"]):  # type: ignore[attr-defined]
    from openami.errors import AmiError
    from openami.protocols.echonet import (
        JST,
        EchonetClient,
        EchonetNode,
        LowVoltageSmartMeter,
        decode_frame,
        encode_frame,
    )

NOW = datetime(2026, 5, 20, 14, 26, 11, tzinfo=JST)


class _Source:
    """A fixed meter: the same answers for every input, so a finding reproduces."""

    def now_jst(self) -> datetime:
        return NOW

    def cumulative_import_wh(self) -> int:
        return 123_456_789

    def cumulative_export_wh(self) -> int:
        return 4_321

    def instantaneous_power_w(self) -> int:
        return -1_250

    def currents_deciamp(self) -> tuple[int, int | None]:
        return (-63, None)

    def half_hourly_import_wh(self, day_back: int) -> Sequence[int | None]:
        return [None if day_back == 0 and slot > 28 else 1_000 * slot for slot in range(48)]

    def half_hourly_export_wh(self, day_back: int) -> Sequence[int | None]:
        return [day_back * 48 + slot for slot in range(48)]

    def production_number(self) -> str:
        return "OPENAMI00001"

    def manufacturer_code(self) -> int:
        return 0xFFFFFF  # the code reserved for experiments


CLIENT = EchonetClient()


def TestOneInput(data: bytes) -> None:
    try:
        frame = decode_frame(data)
    except AmiError:
        pass
    else:
        # A format-1 frame has one encoding: decoding then encoding gives the input back.
        assert encode_frame(frame) == data
    # A fresh node per input: Sets change its state, and a finding must reproduce alone.
    node = EchonetNode([LowVoltageSmartMeter(_Source())], manufacturer_code=0xFFFFFF)
    for reply in node.handle(data):
        assert decode_frame(encode_frame(reply)) == reply
        CLIENT.parse(reply)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
