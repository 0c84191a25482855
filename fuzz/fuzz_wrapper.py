"""Fuzz target: ``decode_wrapper`` (IEC 62056-4-7 wrapper).

Any input either decodes or raises an ``openami.errors.AmiError``; anything else (another
exception, a failed assertion, a hang or a memory blow-up) is a crash. Run through
``fuzz/run.sh``, or alone: ``.venv/bin/python fuzz/fuzz_wrapper.py fuzz/corpus/wrapper``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["openami"]):  # type: ignore[attr-defined]
    from openami.errors import AmiError
    from openami.protocols.dlms.wrapper import decode_wrapper, encode_wrapper


def TestOneInput(data: bytes) -> None:
    try:
        frame = decode_wrapper(data)
    except AmiError:
        return
    # The wrapper has one encoding per frame: decoding then encoding gives the input back.
    assert encode_wrapper(frame) == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
