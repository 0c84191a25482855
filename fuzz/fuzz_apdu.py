"""Fuzz target: ``decode_apdu`` (xDLMS APDUs).

Any input either decodes or raises an ``openami.errors.AmiError``; anything else (another
exception, a failed assertion, a hang or a memory blow-up) is a crash. Run through
``fuzz/run.sh``, or alone: ``.venv/bin/python fuzz/fuzz_apdu.py fuzz/corpus/apdu``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["openami"]):  # type: ignore[attr-defined]
    from openami.errors import AmiError
    from openami.protocols.dlms.apdu import decode_apdu, encode_apdu


def TestOneInput(data: bytes) -> None:
    try:
        apdu = decode_apdu(data)
    except AmiError:
        return
    # Whatever decodes must re-encode, and the re-encoding must be a fixed point.
    again = encode_apdu(apdu)
    assert encode_apdu(decode_apdu(again)) == again


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
