"""Fuzz target: ``decode_data`` (A-XDR data).

Any input either decodes or raises an ``openami.errors.AmiError``; anything else (another
exception, a failed assertion, a hang or a memory blow-up) is a crash. Run through
``fuzz/run.sh``, or alone: ``.venv/bin/python fuzz/fuzz_axdr.py fuzz/corpus/axdr``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["openami"]):  # type: ignore[attr-defined]
    from openami.errors import AmiError
    from openami.protocols.dlms.axdr import decode_data, encode_data


def TestOneInput(data: bytes) -> None:
    try:
        item = decode_data(data)
    except AmiError:
        return
    # Whatever decodes must re-encode, and the re-encoding must be a fixed point.
    again = encode_data(item)
    assert encode_data(decode_data(again)) == again


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
