"""Fuzz target: ``SuiteZero.unprotect`` (security suite 0) with fixed keys and system title.

Any ciphered content either opens or raises ``SecurityError`` / ``DecodeError`` (nothing else,
not even another ``AmiError``); anything else (another exception, a failed assertion, a hang)
is a crash. Run through ``fuzz/run.sh``, or alone:
``.venv/bin/python fuzz/fuzz_security.py fuzz/corpus/security``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["openami"]):  # type: ignore[attr-defined]
    from openami.errors import DecodeError, SecurityError
    from openami.protocols.dlms.security import SuiteZero

from fixed_keys import AK, EK, SYSTEM_TITLE

SUITE = SuiteZero(EK, AK)


def TestOneInput(data: bytes) -> None:
    try:
        counter, plaintext = SUITE.unprotect(SYSTEM_TITLE, data)
    except (SecurityError, DecodeError):
        return
    # Only content protected with these keys opens, and protecting it again gives it back.
    assert SUITE.protect(SYSTEM_TITLE, counter, plaintext, data[0]) == data


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
