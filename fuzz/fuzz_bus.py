"""Fuzz target: ``decode_message`` and ``decode_command_message`` (the bus contract between
head-end and MDMS: reads, events, collection requests, commands and their results).

Any input either decodes or raises an ``openami.errors.AmiError``; anything else (another
exception, a failed assertion, a hang or a memory blow-up) is a crash. Run through
``fuzz/run.sh``, or alone: ``.venv/bin/python fuzz/fuzz_bus.py fuzz/corpus/bus``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["openami"]):  # type: ignore[attr-defined]
    from openami.bus.commands import decode_command_message, encode_command_message
    from openami.bus.contract import decode_message, encode_message
    from openami.errors import AmiError


def TestOneInput(data: bytes) -> None:
    # Whatever decodes must survive its own encoding.
    try:
        message = decode_message(data)
    except AmiError:
        pass
    else:
        assert decode_message(encode_message(message)) == message
    try:
        command = decode_command_message(data)
    except AmiError:
        return
    assert decode_command_message(encode_command_message(command)) == command


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
