"""Inputs found by (or aimed at) the atheris fuzz targets in ``fuzz/``: each must be refused
with a declared error, quickly. A decoder that hangs fails the test instead of hanging it."""

from __future__ import annotations

import base64
import threading
import zlib
from collections.abc import Callable

import pytest

from openami.bus.contract import decode_message
from openami.errors import DecodeError
from openami.protocols.dlms.apdu import decode_apdu
from openami.protocols.dlms.axdr import decode_data
from openami.protocols.dlms.cosem_datetime import decode_datetime

TIME_LIMIT = 2.0  # seconds; every input here decodes (or fails) in well under a millisecond


def _outcome_within_limit(decode: Callable[[bytes], object], raw: bytes) -> object:
    """Run ``decode(raw)`` in a daemon thread; return its result or the exception it raised,
    and fail the test if it is still running after ``TIME_LIMIT``."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(decode(raw))
        except BaseException as exc:  # handed back to the test to judge
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(TIME_LIMIT)
    if worker.is_alive():
        pytest.fail(f"decoding {raw.hex()} did not finish within {TIME_LIMIT} s")
    return outcome[0]


def test_a_get_request_that_loops_another_dlms_decoder_returns_quickly() -> None:
    # 15 octets that put another Python DLMS decoder into an endless loop.
    outcome = _outcome_within_limit(decode_apdu, bytes.fromhex("c0017a00030100a726080041110101"))
    assert not isinstance(outcome, BaseException) or isinstance(outcome, DecodeError), outcome


@pytest.mark.parametrize(
    "raw",
    [
        # fuzz_bus, first minute: a msgpack map whose tag string "colle\x85\xa4" is not UTF-8
        # made msgspec raise UnicodeDecodeError (not msgspec.DecodeError) out of decode_message.
        "85a474797065a7636f6c6c6585a474797065a7636f6c6c656374a86d85a474797065a7636f6c6c656374a8"
        "6d657465725f7465725f69646407a866726fce6609",
        "81a474797065a185",  # reduced by hand: {"type": "\x85"}
        "82a474797065a7636f6c6c656374aa726571756573745f6964a185",  # request_id "\x85"
    ],
)
def test_bus_messages_with_invalid_utf8_raise_decode_error(raw: str) -> None:
    outcome = _outcome_within_limit(decode_message, bytes.fromhex(raw))
    assert isinstance(outcome, DecodeError), outcome


@pytest.mark.parametrize(
    "raw",
    [
        # Not found by fuzz_datetime in 60 s (the overflow happens inside datetime, where no
        # comparison guides the fuzzer) but by reading its seeds: 0001-01-01 00:00 at UTC+1
        # and 9999-12-31 23:00 at UTC-1 are valid local times whose UTC instant is outside
        # datetime's range, and astimezone raised OverflowError.
        "000101010100000000ffc400",
        "270f0c1f0517000000003c00",
    ],
)
def test_date_times_that_leave_the_calendar_in_utc_raise_decode_error(raw: str) -> None:
    outcome = _outcome_within_limit(decode_datetime, bytes.fromhex(raw))
    assert isinstance(outcome, DecodeError), outcome


# fuzz_axdr (a timeout in a 3 s run; this artifact from a 120 s run that stopped on it): a
# 2011-octet compact-array (zlib + base64 below) whose description is a structure of an
# octet-string, 521 * 521 * 521 * 1282 null-data and more; every element needs at least
# 148953457669 octets, and the decoder built the null-data values one by one before finding
# out that the contents were far too short (a hang of hours, not an error).
AXDR_HANG = zlib.decompress(
    base64.b64decode(
        "eNoTZmLmZGSCIVYmBiZhZkYNYUZuBkZWTjYGMGAEQgYGZiAEIUYGOGACSaYAqf9c7P4Brn6Ovp48EIWcbMoghWBx"
        "qBoGBi6YkVAGTAGqRmziRGsB2YVdJTE6kV2JXT0yDykwGKUhNBcMCDMxCbEJAaVZIOHzHxhY7FyIIAVrhKmB2Qy1"
        "zwGbDbDgRjGFyhFDfHygeh6LvYMmwoZkahpqAQpzPSiZk+dySFYYzSBQM0czwWiRSmEJwPAfAJ6PxqY="
    )
)


@pytest.mark.parametrize(
    "raw",
    [
        AXDR_HANG,
        # the same, reduced by hand: structure { array[65535] of array[65535] of null-data,
        # array[65535] of array[65535] of octet-string } and one octet of contents
        bytes.fromhex("13 0202 01ffff01ffff00 01ffff01ffff09 01 00"),
    ],
)
def test_compact_array_elements_longer_than_the_contents_are_refused_first(raw: bytes) -> None:
    outcome = _outcome_within_limit(decode_data, raw)
    assert isinstance(outcome, DecodeError), outcome
    assert "compact-array element needs" in str(outcome)
