from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from openami.fleet.fleet import Fleet
from openami.fleet.meter import MeterServer
from openami.headend.collection import HEADEND_SYSTEM_TITLE
from openami.headend.keystore import KeyStore
from openami.protocols.dlms.apdu import (
    DataNotification,
    GeneralGloCiphering,
    GetRequestNormal,
    GetResponseNormal,
    decode_apdu,
    encode_apdu,
)
from openami.protocols.dlms.axdr import DataType
from openami.protocols.dlms.obis import LOAD_PROFILE
from openami.protocols.dlms.profile import decode_entries, decode_entry, range_descriptor
from openami.protocols.dlms.wrapper import WrapperFrame, decode_wrapper, encode_wrapper
from openami.transport.memory import Datagram
from tests.conftest import provisioned_keys

JST = timezone(timedelta(hours=9))
HES = ("10.255.255.1", 4059)


@pytest.fixture
def fleet() -> Fleet:
    return Fleet(5, datetime(2026, 8, 3, tzinfo=JST), 48, 30, seed=7)


def _request(
    fleet: Fleet, keys: KeyStore, i: int, first: int, last: int, counter: int | None = None
) -> Datagram:
    meter = keys.by_id(i + 1)
    ends = fleet.profiles.interval_end
    get = GetRequestNormal(
        0xC1,
        7,
        LOAD_PROFILE.to_bytes(),
        2,
        1,
        range_descriptor(
            datetime.fromtimestamp(int(ends[first]), tz=UTC),
            datetime.fromtimestamp(int(ends[last]), tz=UTC),
        ),
    )
    ic = keys.next_client_counter(meter) if counter is None else counter
    content = meter.suite.protect(HEADEND_SYSTEM_TITLE, ic, encode_apdu(get))
    glo = encode_apdu(GeneralGloCiphering(HEADEND_SYSTEM_TITLE, content))
    return Datagram(encode_wrapper(WrapperFrame(1, 1, glo)), HES, fleet.addresses[i])


def test_a_push_is_a_ciphered_data_notification_carrying_the_interval(fleet: Fleet) -> None:
    meters = MeterServer(fleet)
    meters.close_interval()
    raw = meters.push(2, 0)
    glo = decode_apdu(decode_wrapper(raw).apdu)
    assert isinstance(glo, GeneralGloCiphering)
    assert glo.system_title == fleet.system_title(2)
    assert fleet.profiles.import_wh[2, 0].tobytes() not in glo.ciphered_content
    counter, plain = fleet.suite(2).unprotect(glo.system_title, glo.ciphered_content)
    assert counter == 1
    note = decode_apdu(plain)
    assert isinstance(note, DataNotification)
    entry = decode_entry(note.body)
    assert entry.interval_end == fleet.profiles.interval_end[0]
    assert entry.import_wh == fleet.profiles.import_wh[2, 0]
    assert entry.import_register == fleet.import_register[2, 0]


def test_registers_grow_by_exactly_the_interval_energy(fleet: Fleet) -> None:
    assert np.array_equal(np.diff(fleet.import_register, axis=1), fleet.profiles.import_wh[:, 1:])
    assert np.array_equal(
        fleet.import_register[:, 0] - fleet.import_register_start, fleet.profiles.import_wh[:, 0]
    )


def test_load_profile_read_by_range_returns_only_closed_intervals(fleet: Fleet) -> None:
    meters = MeterServer(fleet)
    keys = provisioned_keys(fleet)
    for _ in range(10):
        meters.close_interval()
    answer = meters.handle(_request(fleet, keys, 1, 3, 20))
    assert answer is not None
    glo = decode_apdu(decode_wrapper(answer).apdu)
    assert isinstance(glo, GeneralGloCiphering)
    _meter, plain = keys.open(fleet.system_title(1), glo.ciphered_content)
    response = decode_apdu(plain)
    assert isinstance(response, GetResponseNormal)
    assert not isinstance(response.result, int)
    assert response.result.type is DataType.ARRAY
    entries = decode_entries(response.result)
    assert [e.interval_end for e in entries] == list(fleet.profiles.interval_end[3:10])
    assert [e.import_wh for e in entries] == list(fleet.profiles.import_wh[1, 3:10])


def test_replayed_or_forged_requests_get_no_answer(fleet: Fleet) -> None:
    meters = MeterServer(fleet)
    keys = provisioned_keys(fleet)
    meters.close_interval()
    first = _request(fleet, keys, 0, 0, 0)
    assert meters.handle(first) is not None
    assert meters.handle(first) is None  # the same counter again: a replay
    forged = bytearray(_request(fleet, keys, 0, 0, 0).payload)
    forged[-1] ^= 0x01
    assert meters.handle(Datagram(bytes(forged), HES, fleet.addresses[0])) is None
    assert meters.rejected == 2


def test_secrets_stay_out_of_identity_repr(fleet: Fleet) -> None:
    ident = fleet.identities()[0]
    assert ident.ek.hex() not in repr(ident)
    assert ident.ak.hex() not in repr(ident)
