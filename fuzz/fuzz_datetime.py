"""Fuzz target: ``decode_datetime`` (COSEM date-time).

Any input either decodes or raises an ``openami.errors.AmiError``; anything else (another
exception, a failed assertion, a hang or a memory blow-up) is a crash. Run through
``fuzz/run.sh``, or alone: ``.venv/bin/python fuzz/fuzz_datetime.py fuzz/corpus/datetime``.
"""

from __future__ import annotations

import sys
from datetime import timedelta

import atheris

with atheris.instrument_imports(include=["openami"]):  # type: ignore[attr-defined]
    from openami.errors import AmiError
    from openami.protocols.dlms.cosem_datetime import decode_datetime, encode_datetime


def TestOneInput(data: bytes) -> None:
    try:
        moment = decode_datetime(data)
    except AmiError:
        return
    # A decoded instant is aware and UTC, and survives its own encoding.
    assert moment.utcoffset() == timedelta(0)
    assert decode_datetime(encode_datetime(moment)) == moment


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
