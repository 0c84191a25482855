from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols.dlms.hdlc import (
    LLC_FROM_CLIENT,
    MAX_FRAME_LENGTH,
    PUBLIC_CLIENT,
    FrameType,
    HdlcAddress,
    HdlcFrame,
    HdlcParameters,
    HdlcStreamDecoder,
    SegmentReassembler,
    add_llc,
    decode_frame,
    decode_parameters,
    encode_frame,
    encode_parameters,
    fcs16,
    split_information,
    strip_llc,
)

CLIENT = HdlcAddress(PUBLIC_CLIENT)
SERVER = HdlcAddress(0x01)
WITH_INFO = {FrameType.I, FrameType.UI, FrameType.SNRM, FrameType.UA, FrameType.FRMR}

addresses = st.one_of(
    st.builds(HdlcAddress, st.integers(0, 0x7F)),
    st.builds(HdlcAddress, st.integers(0, 0x7F), st.integers(0, 0x7F), st.just(2)),
    st.builds(HdlcAddress, st.integers(0, 0x3FFF), st.integers(0, 0x3FFF), st.just(4)),
)


@st.composite
def frames(draw: st.DrawFn, kind: FrameType | None = None, max_info: int = 200) -> HdlcFrame:
    kind = draw(st.sampled_from(FrameType)) if kind is None else kind
    return HdlcFrame(
        frame_type=kind,
        destination=draw(addresses),
        source=draw(addresses),
        poll_final=draw(st.booleans()),
        send_seq=draw(st.integers(0, 7)) if kind is FrameType.I else 0,
        recv_seq=draw(st.integers(0, 7))
        if kind in {FrameType.I, FrameType.RR, FrameType.RNR}
        else 0,
        segmented=draw(st.booleans()) if kind in {FrameType.I, FrameType.UI} else False,
        information=draw(st.binary(max_size=max_info)) if kind in WITH_INFO else b"",
    )


def craft(addresses_and_control: bytes, info: bytes = b"", *, fmt_bits: int = 0xA000) -> bytes:
    """Build a frame around raw address and control octets, with correct length, HCS and FCS,
    so that a test can reach the checks that come after them."""
    length = 2 + len(addresses_and_control) + (2 + len(info) if info else 0) + 2
    body = bytearray((fmt_bits | length).to_bytes(2, "big") + addresses_and_control)
    if info:
        body += fcs16(body).to_bytes(2, "little") + info
    body += fcs16(body).to_bytes(2, "little")
    return b"\x7e" + bytes(body) + b"\x7e"


def is_subsequence(needle: list[HdlcFrame], haystack: list[HdlcFrame]) -> bool:
    it = iter(haystack)
    return all(any(x == y for y in it) for x in needle)


# --- CRC -------------------------------------------------------------------------------------


def test_fcs16_known_vectors() -> None:
    assert fcs16(b"123456789") == 0x906E  # the CRC-16/X.25 check value
    assert fcs16(b"") == 0x0000  # init 0xFFFF, final xor 0xFFFF
    assert fcs16(b"\x00") == 0xF078


@given(st.binary(max_size=300))
def test_fcs16_good_frame_residue(data: bytes) -> None:
    # RFC 1662: running the FCS over data plus its own FCS (LSB first) leaves the constant
    # 0xF0B8 before the final complement, i.e. 0x0F47 after it.
    assert fcs16(data + fcs16(data).to_bytes(2, "little")) == 0x0F47


# --- frames checked byte for byte --------------------------------------------------------------


def test_snrm_from_public_client_byte_for_byte() -> None:
    # Derived from the IEC 62056-46 layout, octet by octet:
    #   7E      opening flag
    #   A0 07   format: 1010 (type 3), S = 0, length = 7 = format 2 + destination 1
    #           + source 1 + control 1 + FCS 2 (no information field, so no HCS)
    #   03      destination = server, upper HDLC address 1, one octet: (1 << 1) | 1 (last octet)
    #   21      source = public client 0x10: (0x10 << 1) | 1
    #   93      control SNRM 1000 0011 with the poll bit (bit 4) set
    #   0F 01   FCS = CRC-16/X.25 over A0 07 03 21 93 = 0x010F, least significant octet first
    #   7E      closing flag
    frame = HdlcFrame(FrameType.SNRM, SERVER, CLIENT, poll_final=True)
    expected = bytes.fromhex("7e a007 03 21 93 0f01 7e")
    assert fcs16(bytes.fromhex("a007032193")) == 0x010F
    assert encode_frame(frame) == expected
    assert decode_frame(expected) == frame


def test_disc_and_ua_byte_for_byte() -> None:
    # DISC is 0100 0011 (0x43), with P = 0x53; UA is 0110 0011 (0x63), with F = 0x73, and goes
    # from server (source 03) to client (destination 21).
    disc = HdlcFrame(FrameType.DISC, SERVER, CLIENT, poll_final=True)
    assert encode_frame(disc).hex() == "7ea00703215303c77e"
    ua = HdlcFrame(FrameType.UA, CLIENT, SERVER, poll_final=True)
    assert encode_frame(ua)[:6].hex() == "7ea007210373"


def test_i_frame_with_llc_and_hcs_byte_for_byte() -> None:
    # An AARQ (LN referencing, no security) in an I frame, N(S) = N(R) = 0, poll bit set:
    # control = RRR P SSS 0 = 000 1 000 0 = 0x10. The information field is the LLC header
    # E6 E6 00 and the 31-octet AARQ, 34 octets; length = 2 + 1 + 1 + 1 + HCS 2 + 34 + FCS 2 = 43
    # = 0x2B. The HCS covers A0 2B 03 21 10. The APDU holds a 0x7E octet, which is sent as is.
    aarq = bytes.fromhex("601da109060760857405080101be10040e01000000065f1f0400007e1f04b0")
    frame = HdlcFrame(
        FrameType.I, SERVER, CLIENT, poll_final=True, information=add_llc(aarq, from_client=True)
    )
    raw = encode_frame(frame)
    assert raw[:6].hex() == "7ea02b032110"
    assert raw[6:8] == fcs16(bytes.fromhex("a02b032110")).to_bytes(2, "little")
    assert raw[6:8].hex() == "fbaf"
    assert raw[8:11] == LLC_FROM_CLIENT and raw[11:-3] == aarq
    assert raw[-3:-1] == fcs16(raw[1:-3]).to_bytes(2, "little") and raw[-1] == 0x7E
    assert len(raw) == 0x2B + 2
    assert strip_llc(decode_frame(raw).information, from_client=True) == aarq


@pytest.mark.parametrize(
    ("frame", "control"),
    [
        (HdlcFrame(FrameType.I, SERVER, CLIENT, True, send_seq=3, recv_seq=5), 0b101_1_011_0),
        (HdlcFrame(FrameType.I, SERVER, CLIENT, False, send_seq=7, recv_seq=0), 0b000_0_111_0),
        (HdlcFrame(FrameType.RR, SERVER, CLIENT, True, recv_seq=2), 0b010_1_0001),
        (HdlcFrame(FrameType.RNR, SERVER, CLIENT, False, recv_seq=7), 0b111_0_0101),
        (HdlcFrame(FrameType.SNRM, SERVER, CLIENT, True), 0x93),
        (HdlcFrame(FrameType.DISC, SERVER, CLIENT, False), 0x43),
        (HdlcFrame(FrameType.UA, CLIENT, SERVER, True), 0x73),
        (HdlcFrame(FrameType.DM, CLIENT, SERVER, True), 0x1F),
        (HdlcFrame(FrameType.FRMR, CLIENT, SERVER, True), 0x97),
        (HdlcFrame(FrameType.UI, CLIENT, SERVER, False), 0x03),
    ],
)
def test_control_octets(frame: HdlcFrame, control: int) -> None:
    raw = encode_frame(frame)
    assert raw[5] == control
    assert decode_frame(raw) == frame


@pytest.mark.parametrize(
    ("address", "octets"),
    [
        (HdlcAddress(0x7F), "ff"),
        (HdlcAddress(0x01, 0x11, 2), "0223"),
        (HdlcAddress(0x7F, 0x7F, 2), "feff"),
        (HdlcAddress(0x0001, 0x0100, 4), "00020401"),  # 14-bit parts as two 7-bit groups each
        (HdlcAddress(0x3FFF, 0x3FFF, 4), "fefefeff"),
    ],
)
def test_server_address_encodings(address: HdlcAddress, octets: str) -> None:
    raw = encode_frame(HdlcFrame(FrameType.SNRM, address, CLIENT, poll_final=True))
    n = len(octets) // 2
    assert raw[3 : 3 + n].hex() == octets
    assert raw[3 + n] == 0x21
    assert raw[2] == 7 + n - 1  # the length field grows with the address
    assert decode_frame(raw).destination == address


def test_segmentation_bit_and_no_hcs_without_information() -> None:
    segmented = encode_frame(
        HdlcFrame(FrameType.I, SERVER, CLIENT, segmented=True, information=b"x")
    )
    assert segmented[1] == 0xA8  # 1010 1 000: the S bit is bit 11 of the format field
    assert len(encode_frame(HdlcFrame(FrameType.RR, SERVER, CLIENT))) == 9  # no HCS


# --- round trips and refusals --------------------------------------------------------------


@given(frames())
def test_every_frame_round_trips(frame: HdlcFrame) -> None:
    assert decode_frame(encode_frame(frame)) == frame


@pytest.mark.parametrize("kind", list(FrameType))
@given(data=st.data())
def test_each_frame_type_round_trips(kind: FrameType, data: st.DataObject) -> None:
    frame = data.draw(frames(kind=kind))
    raw = encode_frame(frame)
    assert decode_frame(raw) == frame
    assert raw[2] | (raw[1] & 7) << 8 == len(raw) - 2


def test_longest_frame() -> None:
    overhead = 2 + 1 + 1 + 1 + 2 + 2
    info = bytes(MAX_FRAME_LENGTH - overhead)
    raw = encode_frame(HdlcFrame(FrameType.I, SERVER, CLIENT, information=info))
    assert len(raw) == MAX_FRAME_LENGTH + 2 and raw[1:3] == b"\xa7\xff"
    assert decode_frame(raw).information == info
    with pytest.raises(LocalProtocolError, match="exceeds"):
        encode_frame(HdlcFrame(FrameType.I, SERVER, CLIENT, information=info + b"x"))


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (HdlcFrame(FrameType.RR, SERVER, CLIENT, information=b"x"), "no information"),
        (HdlcFrame(FrameType.DISC, SERVER, CLIENT, information=b"x"), "no information"),
        (HdlcFrame(FrameType.SNRM, SERVER, CLIENT, segmented=True), "segmented"),
        (HdlcFrame(FrameType.I, SERVER, CLIENT, send_seq=8), "outside"),
        (HdlcFrame(FrameType.RR, SERVER, CLIENT, recv_seq=-1), "outside"),
        (HdlcFrame(FrameType.RR, SERVER, CLIENT, send_seq=1), "no N\\(S\\)"),
        (HdlcFrame(FrameType.UA, CLIENT, SERVER, recv_seq=1), "no N\\(R\\)"),
        (HdlcFrame(FrameType.UA, HdlcAddress(0x80), SERVER), "one-octet"),
        (HdlcFrame(FrameType.UA, HdlcAddress(1, 2), SERVER), "one-octet"),
        (HdlcFrame(FrameType.UA, HdlcAddress(1, None, 2), SERVER), "upper and lower"),
        (HdlcFrame(FrameType.UA, HdlcAddress(1, 0x80, 2), SERVER), "upper and lower"),
        (HdlcFrame(FrameType.UA, HdlcAddress(0x4000, 1, 4), SERVER), "upper and lower"),
        (HdlcFrame(FrameType.UA, HdlcAddress(1, 1, 3), SERVER), "1, 2 or 4"),
    ],
)
def test_encoder_refuses_invalid_frames(frame: HdlcFrame, match: str) -> None:
    with pytest.raises(LocalProtocolError, match=match):
        encode_frame(frame)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"", "flag"),
        (b"\x7e", "truncated"),
        (bytes.fromhex("7e a007 03 21 93 0f01 7f"), "end with"),
        (bytes.fromhex("7e a007 03 21 93 0f02 7e"), "FCS"),
        (bytes.fromhex("7e b007 03 21 93 0f01 7e"), "format type"),
        (bytes.fromhex("7e a006 03 21 93 0f01 7e"), "length"),
        (bytes.fromhex("7e a007 03 21 93 0f01"), "truncated"),
        (bytes.fromhex("7e a007 03 21 93 0f01 7e 7e"), "length field"),
        (craft(bytes.fromhex("03 21 09")), "REJ"),  # REJ: supervisory, not used by DLMS
        (craft(bytes.fromhex("03 21 2f")), "unnumbered"),  # SABM is not DLMS
        (craft(bytes.fromhex("020407 21 93")), "three octets"),
        (craft(bytes.fromhex("0002040600 21 93")), "longer than four"),
        (craft(bytes.fromhex("03 21 53"), b"x"), "DISC frame with an information"),
        (craft(bytes.fromhex("03 21 73"), fmt_bits=0xA800), "segmentation bit"),
        (craft(bytes.fromhex("03 21 10"), b"abc")[:6] + b"\0\0abc\0\0\x7e", "HCS"),
        (bytes.fromhex("7e a009 03 21 10 0000 7e 7e"), "no room for HCS"),
        (bytes.fromhex("7e a007 02 02 02 02 7e"), "run into the FCS"),
        (bytes.fromhex("7e a007 02 03 03 0000 7e"), "control field"),
    ],
)
def test_decoder_refuses_bad_frames(raw: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        decode_frame(raw)


@given(st.binary(max_size=300))
def test_decoding_any_bytes_raises_only_decode_error(raw: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_frame(raw)


@given(st.sampled_from([b"\x7e\xa0", b"\x7e\xa8", b"\x7e\xa1"]), st.binary(max_size=300))
def test_decoding_plausible_frames_raises_only_decode_error(prefix: bytes, rest: bytes) -> None:
    raw = prefix + bytes((len(rest) + 1,)) + rest
    with contextlib.suppress(DecodeError):
        decode_frame(raw)


@given(frames(), st.data())
def test_truncated_frames_are_refused(frame: HdlcFrame, data: st.DataObject) -> None:
    raw = encode_frame(frame)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(DecodeError):
        decode_frame(raw[:cut])


@settings(max_examples=60)
@given(frames(max_info=40))
def test_every_single_bit_flip_is_rejected(frame: HdlcFrame) -> None:
    # A CRC-16 detects every single-bit error; flips in a flag or the length field fail the
    # flag or length checks first. So no flip may decode, let alone crash.
    raw = encode_frame(frame)
    for bit in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(DecodeError):
            decode_frame(bytes(flipped))


# --- stream decoder ------------------------------------------------------------------------


def _feed_in_pieces(decoder: HdlcStreamDecoder, stream: bytes, cuts: list[int]) -> list[HdlcFrame]:
    out: list[HdlcFrame] = []
    start = 0
    for cut in [*sorted(cuts), len(stream)]:
        out += decoder.feed(stream[start:cut])
        start = cut
        assert decoder.buffered <= decoder.max_frame_length + 1
    return out


noise = st.binary(max_size=20).map(lambda b: b.replace(b"\x7e", b""))


@given(st.lists(frames(), max_size=6), st.booleans(), noise, st.data())
def test_stream_recovers_frames_at_any_split(
    sent: list[HdlcFrame], shared_flags: bool, garbage: bytes, data: st.DataObject
) -> None:
    encoded = [encode_frame(f) for f in sent]
    if shared_flags:  # the closing flag of one frame opens the next one
        stream = garbage + b"".join(e[:-1] for e in encoded) + (b"\x7e" if encoded else b"")
    else:
        stream = garbage + b"".join(encoded)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8))
    decoder = HdlcStreamDecoder()
    assert _feed_in_pieces(decoder, stream, cuts) == sent
    assert decoder.discarded_octets == len(garbage)
    assert decoder.buffered <= 1  # at most the last closing flag, kept in case it opens more
    assert decoder.idle() == []
    assert decoder.buffered == 0
    assert decoder.discarded_octets == len(garbage)


def test_stream_one_octet_at_a_time_with_noise_between_frames() -> None:
    a = HdlcFrame(FrameType.SNRM, SERVER, CLIENT, poll_final=True)
    b = HdlcFrame(FrameType.I, SERVER, CLIENT, True, 1, 2, information=b"\x7e\x7e\x00~")
    stream = b"\x00\x7e\x7e" + encode_frame(a) + b"\x7e\x7e\xff" + encode_frame(b) + b"\x7e"
    decoder = HdlcStreamDecoder()
    out: list[HdlcFrame] = []
    for octet in stream:
        out += decoder.feed(bytes((octet,)))
    assert out == [a, b]


@settings(max_examples=60)
@given(st.lists(frames(max_info=60), min_size=1, max_size=5), st.data())
def test_stream_skips_a_corrupted_frame_and_keeps_the_others(
    sent: list[HdlcFrame], data: st.DataObject
) -> None:
    encoded = [encode_frame(f) for f in sent]
    victim = data.draw(st.integers(0, len(sent) - 1))
    bit = data.draw(st.integers(0, len(encoded[victim]) * 8 - 1))
    corrupted = bytearray(encoded[victim])
    corrupted[bit // 8] ^= 1 << (bit % 8)
    encoded[victim] = bytes(corrupted)
    stream = b"".join(encoded)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=4))
    decoder = HdlcStreamDecoder()
    # idle() as the transport would call it once the line goes quiet: whatever a damaged frame
    # left pending is given up and the frames behind it are released.
    out = _feed_in_pieces(decoder, stream, cuts) + decoder.idle()
    assert is_subsequence(sent[:victim] + sent[victim + 1 :], out)
    assert decoder.discarded_octets > 0
    assert decoder.buffered == 0


def test_idle_releases_frames_behind_a_frame_cut_short() -> None:
    # The sender stopped half-way through a long I frame (header and HCS are good, so the
    # decoder waits for the 100 announced octets); the inter-octet timeout gives it up.
    cut_short = encode_frame(HdlcFrame(FrameType.I, SERVER, CLIENT, information=bytes(91)))[:20]
    ua = HdlcFrame(FrameType.UA, CLIENT, SERVER, poll_final=True)
    decoder = HdlcStreamDecoder()
    assert decoder.feed(cut_short + encode_frame(ua)) == []
    assert decoder.buffered == 29
    assert decoder.idle() == [ua]
    assert decoder.discarded_octets == 20
    assert decoder.buffered == 0


def test_stream_skips_frames_longer_than_the_negotiated_maximum() -> None:
    long = HdlcFrame(FrameType.I, SERVER, CLIENT, information=bytes(100))
    short = HdlcFrame(FrameType.RR, SERVER, CLIENT, recv_seq=3)
    decoder = HdlcStreamDecoder(max_frame_length=64)
    assert decoder.feed(encode_frame(long) + encode_frame(short)) == [short]
    with pytest.raises(LocalProtocolError):
        HdlcStreamDecoder(max_frame_length=MAX_FRAME_LENGTH + 1)


@given(
    st.lists(
        st.lists(st.one_of(st.binary(max_size=8), st.sampled_from([b"\x7e", b"\x7e\xa0"]))).map(
            b"".join
        ),
        max_size=30,
    ),
    st.integers(7, MAX_FRAME_LENGTH),
)
def test_stream_survives_any_bytes_within_its_bound(chunks: list[bytes], limit: int) -> None:
    decoder = HdlcStreamDecoder(max_frame_length=limit)
    for chunk in chunks:
        decoder.feed(chunk)
        assert decoder.buffered <= limit + 1
    decoder.idle()
    assert decoder.buffered == 0


# --- negotiation parameters ----------------------------------------------------------------


def test_parameters_known_encoding() -> None:
    # 81 format identifier, 80 group identifier, 12 group length (18 octets follow);
    # 05 max info field length transmit: 1 octet, 0x80; 06 receive: 1 octet, 0x80;
    # 07 window size transmit: 4 octets, 1; 08 window size receive: 4 octets, 1.
    expected = "818012" + "050180" + "060180" + "070400000001" + "080400000001"
    assert encode_parameters(HdlcParameters()).hex() == expected
    assert decode_parameters(bytes.fromhex(expected)) == HdlcParameters()


def test_parameters_two_octet_lengths_defaults_and_unknown_ids() -> None:
    raw = bytes.fromhex("81800e" + "05020400" + "0602" + "0100" + "0301ff" + "080107")
    assert decode_parameters(raw) == HdlcParameters(1024, 256, 1, 7)
    assert decode_parameters(b"") == HdlcParameters()
    assert encode_parameters(HdlcParameters(1024, 256, 1, 7)).hex().startswith("81801405020400")


@given(
    st.builds(
        HdlcParameters,
        st.integers(1, 0xFFFF),
        st.integers(1, 0xFFFF),
        st.integers(1, 7),
        st.integers(1, 7),
    )
)
def test_parameters_round_trip(params: HdlcParameters) -> None:
    assert decode_parameters(encode_parameters(params)) == params


@pytest.mark.parametrize(
    "raw",
    [
        "8180",
        "818001",
        "828000",
        "818100",
        "818004050180",
        "8180020501",
        "818003070108",
        "818003070100",
        "818003050100",
        "81800705050000000001",
        "818006050180050180",
        "818003050201",
        "818006050400010000",
    ],
)
def test_bad_parameters_are_refused(raw: str) -> None:
    with pytest.raises(DecodeError):
        decode_parameters(bytes.fromhex(raw))


@given(st.binary(max_size=40))
def test_decoding_any_parameters_raises_only_decode_error(raw: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_parameters(b"\x81\x80" + bytes((len(raw),)) + raw)
    with contextlib.suppress(DecodeError):
        decode_parameters(raw)


def test_encoding_invalid_parameters_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="window_rx"):
        encode_parameters(HdlcParameters(window_rx=8))
    with pytest.raises(LocalProtocolError, match="max_info_tx"):
        encode_parameters(HdlcParameters(max_info_tx=0))


# --- LLC and segmentation ------------------------------------------------------------------


def test_llc_headers() -> None:
    assert add_llc(b"\xc0", from_client=True) == b"\xe6\xe6\x00\xc0"
    assert add_llc(b"\xc4", from_client=False) == b"\xe6\xe7\x00\xc4"
    assert strip_llc(b"\xe6\xe7\x00\xc4", from_client=False) == b"\xc4"
    with pytest.raises(DecodeError, match="LLC"):
        strip_llc(b"\xe6\xe7\x00\xc4", from_client=True)
    with pytest.raises(DecodeError, match="LLC"):
        strip_llc(b"\xe6", from_client=False)


@given(st.binary(min_size=1, max_size=1500), st.integers(16, 300), st.data())
def test_segmentation_round_trip(apdu: bytes, max_info: int, data: st.DataObject) -> None:
    payload = add_llc(apdu, from_client=False)
    pieces = split_information(payload, max_info)
    assert all(1 <= len(chunk) <= max_info for chunk, _ in pieces)
    assert [more for _, more in pieces] == [True] * (len(pieces) - 1) + [False]
    assert len(pieces) == -(-len(payload) // max_info)
    sent = [
        HdlcFrame(FrameType.I, CLIENT, SERVER, True, n % 8, 0, more, chunk)
        for n, (chunk, more) in enumerate(pieces)
    ]
    stream = b"".join(encode_frame(f) for f in sent)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=5))
    received = _feed_in_pieces(HdlcStreamDecoder(), stream, cuts)
    reassembler = SegmentReassembler()
    results = [reassembler.add(f) for f in received]
    assert results[:-1] == [None] * (len(results) - 1)
    assert results[-1] is not None
    assert strip_llc(results[-1], from_client=False) == apdu
    assert reassembler.pending == 0


def test_segmentation_refusals() -> None:
    with pytest.raises(LocalProtocolError):
        split_information(b"", 10)
    with pytest.raises(LocalProtocolError):
        split_information(b"abc", 0)
    reassembler = SegmentReassembler(max_length=4)
    with pytest.raises(LocalProtocolError, match="RR"):
        reassembler.add(HdlcFrame(FrameType.RR, CLIENT, SERVER))
    assert (
        reassembler.add(HdlcFrame(FrameType.I, CLIENT, SERVER, segmented=True, information=b"ab"))
        is None
    )
    with pytest.raises(DecodeError, match="exceeds"):
        reassembler.add(HdlcFrame(FrameType.I, CLIENT, SERVER, information=b"abc"))
    assert reassembler.pending == 0
    reassembler.add(HdlcFrame(FrameType.I, CLIENT, SERVER, segmented=True, information=b"ab"))
    with pytest.raises(DecodeError, match="UI frame inside"):
        reassembler.add(HdlcFrame(FrameType.UI, CLIENT, SERVER, information=b"c"))
    assert reassembler.add(HdlcFrame(FrameType.UI, CLIENT, SERVER, information=b"c")) == b"c"
