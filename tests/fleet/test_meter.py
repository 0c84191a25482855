from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from openami.fleet.fleet import Fleet, IntervalValues
from openami.fleet.meter import MeterServer
from openami.fleet.pushgen import PushEncoder
from openami.headend.collection import HEADEND_SYSTEM_TITLE
from openami.headend.keystore import KeyStore
from openami.protocols.dlms.apdu import (
    DataAccessResult,
    DataNotification,
    GeneralGloCiphering,
    GetRequestNormal,
    GetResponseNormal,
    decode_apdu,
    encode_apdu,
)
from openami.protocols.dlms.axdr import DataType
from openami.protocols.dlms.obis import LOAD_PROFILE
from openami.protocols.dlms.profile import (
    ProfileEntry,
    decode_entries,
    decode_entry,
    range_descriptor,
)
from openami.protocols.dlms.wrapper import WrapperFrame, decode_wrapper, encode_wrapper
from openami.transport.memory import Datagram
from tests.conftest import provisioned_keys

JST = timezone(timedelta(hours=9))
HES = ("10.255.255.1", 4059)


@pytest.fixture
def fleet() -> Fleet:
    return Fleet.simple(5, datetime(2026, 8, 3, tzinfo=JST), seed=7)


def _at(fleet: Fleet, number: int) -> datetime:
    return datetime.fromtimestamp(fleet.interval_end(number), tz=UTC)


def _request(
    fleet: Fleet,
    keys: KeyStore,
    i: int,
    first: int,
    last: int,
    counter: int | None = None,
    instance: bytes = LOAD_PROFILE.to_bytes(),
) -> Datagram:
    """A ciphered get-request for meter ``i``'s profile, interval numbers ``first..last``."""
    meter = keys.by_id(i + 1)
    get = GetRequestNormal(
        0xC1, 7, instance, 2, 1, range_descriptor(_at(fleet, first), _at(fleet, last))
    )
    ic = keys.next_client_counter(meter) if counter is None else counter
    content = meter.suite.protect(HEADEND_SYSTEM_TITLE, ic, encode_apdu(get))
    glo = encode_apdu(GeneralGloCiphering(HEADEND_SYSTEM_TITLE, content))
    return Datagram(encode_wrapper(WrapperFrame(1, 1, glo)), HES, fleet.address(i))


def _response(keys: KeyStore, fleet: Fleet, i: int, answer: bytes | None) -> GetResponseNormal:
    assert answer is not None
    glo = decode_apdu(decode_wrapper(answer).apdu)
    assert isinstance(glo, GeneralGloCiphering)
    assert glo.system_title == fleet.system_title(i)
    _meter, plain = keys.open(glo.system_title, glo.ciphered_content)
    response = decode_apdu(plain)
    assert isinstance(response, GetResponseNormal)
    return response


def _entries(keys: KeyStore, fleet: Fleet, i: int, answer: bytes | None) -> list[ProfileEntry]:
    response = _response(keys, fleet, i, answer)
    assert not isinstance(response.result, DataAccessResult)
    assert response.result.type is DataType.ARRAY
    return decode_entries(response.result)


def _expected(fleet: Fleet, values: list[IntervalValues], i: int) -> list[ProfileEntry]:
    return [
        ProfileEntry(
            fleet.interval_end(v.number),
            int(v.status[i]),
            int(v.import_register[i]),
            int(v.export_register[i]),
            int(v.import_wh[i]),
            int(v.export_wh[i]),
        )
        for v in values
    ]


def test_a_push_is_a_ciphered_data_notification_carrying_the_interval(fleet: Fleet) -> None:
    encoder = PushEncoder(fleet)
    meters = np.arange(fleet.n, dtype=np.int64)
    before = fleet.import_register.copy()
    values = fleet.advance()
    raw = bytes(encoder.intervals(values, meters)[2])
    glo = decode_apdu(decode_wrapper(raw).apdu)
    assert isinstance(glo, GeneralGloCiphering)
    assert glo.system_title == fleet.system_title(2)
    assert int(values.import_register[2]).to_bytes(4, "big") not in glo.ciphered_content
    counter, plain = fleet.suite(2).unprotect(glo.system_title, glo.ciphered_content)
    assert counter == 1
    note = decode_apdu(plain)
    assert isinstance(note, DataNotification)
    entry = decode_entry(note.body)
    assert entry == _expected(fleet, [values], 2)[0]
    assert entry.import_register == before[2] + entry.import_wh  # register moved by the interval


def test_load_profile_read_by_range_returns_only_closed_intervals(fleet: Fleet) -> None:
    meters = MeterServer(fleet)
    keys = provisioned_keys(fleet)
    values = [fleet.advance() for _ in range(10)]
    o = fleet.origin
    entries = _entries(keys, fleet, 1, meters.handle(_request(fleet, keys, 1, o + 4, o + 21)))
    # intervals 4..10 are closed; 11..21 do not exist yet
    assert entries == _expected(fleet, values[3:10], 1)
    assert [e.interval_end for e in entries] == [fleet.interval_end(o + k) for k in range(4, 11)]


def test_a_range_into_the_past_reaches_before_the_origin(fleet: Fleet) -> None:
    meters = MeterServer(fleet)
    keys = provisioned_keys(fleet)
    values = [fleet.advance() for _ in range(2)]
    o = fleet.origin
    entries = _entries(keys, fleet, 3, meters.handle(_request(fleet, keys, 3, o - 5, o + 2)))
    assert [e.interval_end for e in entries] == [fleet.interval_end(o + k) for k in range(-5, 3)]
    assert entries[-2:] == _expected(fleet, values, 3)
    assert entries[5].import_register == fleet.import_base[3]  # the origin
    for a, b in itertools.pairwise(entries):
        assert b.import_register - a.import_register == b.import_wh


def test_replayed_or_forged_requests_get_no_answer(fleet: Fleet) -> None:
    meters = MeterServer(fleet)
    keys = provisioned_keys(fleet)
    fleet.advance()
    o = fleet.origin
    first = _request(fleet, keys, 0, o + 1, o + 1)
    assert meters.handle(first) is not None
    assert meters.handle(first) is None  # the same counter again: a replay
    forged = bytearray(_request(fleet, keys, 0, o + 1, o + 1).payload)
    forged[-1] ^= 0x01
    assert meters.handle(Datagram(bytes(forged), HES, fleet.address(0))) is None
    assert meters.rejected == 2


def test_no_answer_without_power_or_at_an_unknown_address(fleet: Fleet) -> None:
    meters = MeterServer(fleet)
    keys = provisioned_keys(fleet)
    fleet.advance()
    o = fleet.origin
    fleet.set_power(np.array([4]), False)
    assert meters.handle(_request(fleet, keys, 4, o, o + 1)) is None
    request = _request(fleet, keys, 3, o, o + 1)
    assert meters.handle(Datagram(request.payload, HES, ("127.9.9.9", 4059))) is None
    assert meters.rejected == 0  # not refused: nobody there to answer


def test_an_unknown_object_is_answered_with_an_error(fleet: Fleet) -> None:
    meters = MeterServer(fleet)
    keys = provisioned_keys(fleet)
    fleet.advance()
    o = fleet.origin
    request = _request(fleet, keys, 2, o, o + 1, instance=bytes((1, 0, 99, 2, 0, 255)))
    response = _response(keys, fleet, 2, meters.handle(request))
    assert response.result is DataAccessResult.OBJECT_UNDEFINED


def test_secrets_stay_out_of_identity_repr(fleet: Fleet) -> None:
    ident = next(fleet.identities())
    assert ident == fleet.identity(0)
    assert ident.ek.hex() not in repr(ident)
    assert ident.ak.hex() not in repr(ident)
    assert ident.kek.hex() not in repr(ident)
