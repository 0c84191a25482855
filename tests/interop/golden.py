"""Turn a gurux_client.py frame trace into an annotated golden-vector file, and check one.

Imports nothing from Gurux. Decryption uses ``cryptography`` directly (AES-GCM-128, 12-octet
tags, IV = sender system title || IC, AAD = SC || AK), independently of src/openami, so the
vectors can later test our own decoders without testing them against themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.interop import lab_data

__all__ = [
    "VECTOR_DIR",
    "VectorKeys",
    "build_vector",
    "check_vector",
    "gmac",
    "open_ciphered",
]

VECTOR_DIR = Path(__file__).resolve().parent / "vectors"
TAG_LEN = 12

_NAMES = {
    lab_data.CLOCK_OBIS: "clock",
    lab_data.STATUS_OBIS: "status",
    lab_data.IMPORT_OBIS: "import register",
    lab_data.EXPORT_OBIS: "export register",
    lab_data.PROFILE_OBIS: "load profile",
    "0.0.40.0.0.255": "current association",
}
_GLO = {
    0xC8: "glo-get-request",
    0xCC: "glo-get-response",
    0xC9: "glo-set-request",
    0xCD: "glo-set-response",
    0xCB: "glo-action-request",
    0xCF: "glo-action-response",
}
_ACSE = {0x60: "AARQ", 0x61: "AARE", 0x62: "RLRQ", 0x63: "RLRE"}
_DATA_TYPES = {
    0x00: "null-data",
    0x01: "array",
    0x02: "structure",
    0x03: "boolean",
    0x06: "double-long-unsigned",
    0x09: "octet-string",
    0x0F: "integer",
    0x11: "unsigned",
    0x12: "long-unsigned",
    0x16: "enum",
}


@dataclass(frozen=True, slots=True)
class VectorKeys:
    """What is needed to open the protected frames of a session."""

    ek: bytes
    ak: bytes
    client_system_title: bytes
    server_system_title: bytes


# --- small parsers --------------------------------------------------------------------


def _ber_length(buf: bytes, pos: int) -> tuple[int, int]:
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    size = first & 0x7F
    return int.from_bytes(buf[pos + 1 : pos + 1 + size], "big"), pos + 1 + size


def _ber_elements(body: bytes) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(body):
        tag = body[pos]
        length, pos = _ber_length(body, pos + 1)
        out.append((tag, body[pos : pos + length]))
        pos += length
    return out


def _obis(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


def _descriptor(raw: bytes) -> tuple[int, str, int]:
    """Class id, OBIS and attribute or method id of a cosem descriptor."""
    return int.from_bytes(raw[0:2], "big"), _obis(raw[2:8]), raw[8]


def _name(obis: str) -> str:
    return _NAMES.get(obis, obis)


# --- cryptography ---------------------------------------------------------------------


def open_ciphered(content: bytes, system_title: bytes, ek: bytes, ak: bytes) -> bytes:
    """Plaintext of SC || IC || ciphertext || tag (security control 0x30, suite 0)."""
    sc = content[0]
    if sc & 0x30 != 0x30:
        raise ValueError(f"security control 0x{sc:02x} is not authenticated encryption")
    iv = system_title + content[1:5]
    body, tag = content[5:-TAG_LEN], content[-TAG_LEN:]
    decryptor = Cipher(algorithms.AES(ek), modes.GCM(iv, tag, min_tag_length=TAG_LEN)).decryptor()
    decryptor.authenticate_additional_data(bytes((sc,)) + ak)
    return decryptor.update(body) + decryptor.finalize()


def gmac(
    system_title: bytes, invocation_counter: int, challenge: bytes, ek: bytes, ak: bytes
) -> bytes:
    """HLS-GMAC answer f(challenge) = SC 0x10 || IC || GMAC(SC || AK || challenge)[:12]."""
    ic = invocation_counter.to_bytes(4, "big")
    encryptor = Cipher(algorithms.AES(ek), modes.GCM(system_title + ic)).encryptor()
    encryptor.authenticate_additional_data(bytes((0x10,)) + ak + challenge)
    encryptor.finalize()
    return bytes((0x10,)) + ic + encryptor.tag[:TAG_LEN]


# --- annotation -----------------------------------------------------------------------


@dataclass
class _Context:
    keys: VectorKeys | None
    last_request: str = ""
    ctos: bytes = b""
    stoc: bytes = b""


def _protected(
    kind: str, content: bytes, title: bytes, ctx: _Context, extra: dict[str, Any] | None = None
) -> tuple[dict[str, Any], bytes]:
    if ctx.keys is None:
        raise ValueError(f"{kind} in a session without keys")
    plain = open_ciphered(content, title, ctx.keys.ek, ctx.keys.ak)
    info: dict[str, Any] = {
        "kind": kind,
        **(extra or {}),
        "system_title": title.hex(),
        "security_control": f"{content[0]:02x}",
        "invocation_counter": int.from_bytes(content[1:5], "big"),
        "plaintext": plain.hex(),
    }
    return info, plain


def _data_summary(data: bytes) -> str:
    kind = _DATA_TYPES.get(data[0], f"type 0x{data[0]:02x}") if data else "nothing"
    if data and data[0] == 0x01:
        return f"array of {data[1]}"
    if data and data[0] == 0x09 and len(data) >= 2 and data[1] == 12:
        year = int.from_bytes(data[2:4], "big")
        dev = int.from_bytes(data[11:13], "big", signed=True)
        return (
            f"date-time {year:04d}-{data[4]:02d}-{data[5]:02d} {data[7]:02d}:{data[8]:02d}:"
            f"{data[9]:02d}, day of week {data[6]:#04x}, deviation {dev}"
        )
    if data and data[0] == 0x06:
        return f"double-long-unsigned {int.from_bytes(data[1:5], 'big')}"
    if data and data[0] in (0x11, 0x16):
        return f"{kind} {data[1]}"
    if data and data[0] == 0x02 and data[1:2] == b"\x02" and data[2] == 0x0F:
        scaler = int.from_bytes(data[3:4], "big", signed=True)
        return f"scaler_unit {{integer {scaler}, enum {data[5]}}}"
    return kind


def _describe_xdlms(plain: bytes, ctx: _Context) -> str:
    tag, choice = plain[0], plain[1] if len(plain) > 1 else 0
    if tag == 0xC0 and choice == 0x01:
        class_id, obis, attr = _descriptor(plain[3:12])
        what = f"get-request-normal: {_name(obis)} (class {class_id}, {obis}, attribute {attr})"
        if plain[12] == 1:
            selector = plain[13]
            label = {1: "range_descriptor", 2: "entry_descriptor"}.get(selector, "selector")
            what += f" with selective access {selector} ({label}"
            what += ", restricting object the clock)" if selector == 1 else ")"
        ctx.last_request = f"{_name(obis)} attribute {attr}"
        return what
    if tag == 0xC0 and choice == 0x02:
        return f"get-request-next: block {int.from_bytes(plain[3:7], 'big')}"
    if tag == 0xC4 and choice == 0x01:
        if plain[3] == 0:
            summary = _data_summary(plain[4:])
            return f"get-response-normal, {ctx.last_request}: data, {summary}"
        return f"get-response-normal, {ctx.last_request}: data-access-result {plain[4]}"
    if tag == 0xC4 and choice == 0x02:
        return "get-response-with-datablock"
    if tag == 0xC3 and choice == 0x01:
        class_id, obis, method = _descriptor(plain[3:12])
        if class_id == 15 and method == 1:
            return (
                f"action-request-normal: reply_to_HLS_authentication ({_name(obis)} {obis},"
                " method 1), parameter f(StoC)"
            )
        return f"action-request-normal: class {class_id} {obis} method {method}"
    if tag == 0xC7 and choice == 0x01:
        if plain[3] == 0 and len(plain) > 4 and plain[4] == 1:
            return "action-response-normal: success, return parameter f(CtoS)"
        return f"action-response-normal: result {plain[3]}"
    if tag == 0x01:
        return "xDLMS InitiateRequest"
    if tag == 0x08:
        return "xDLMS InitiateResponse"
    return f"xDLMS APDU 0x{tag:02x}"


def _acse(apdu: bytes, sender: str, ctx: _Context, info: dict[str, Any]) -> str:
    name = _ACSE[apdu[0]]
    length, pos = _ber_length(apdu, 1)
    fields = dict(_ber_elements(apdu[pos : pos + length]))
    parts: list[str] = [name]
    if 0xA1 in fields:
        context = fields[0xA1][-1]
        parts.append({1: "LN", 3: "LN with ciphering"}.get(context, f"context {context}"))
    if 0xA2 in fields:
        result = fields[0xA2][-1]
        parts.append({0: "accepted", 1: "rejected-permanent"}.get(result, f"result {result}"))
    if 0xA3 in fields:
        diagnostic = fields[0xA3][-1]
        label = {0: "null", 13: "authentication-failure", 14: "authentication-required"}
        parts.append(f"diagnostic {label.get(diagnostic, str(diagnostic))}")
    mechanism = fields.get(0x8B) or fields.get(0x89)
    if mechanism:
        mech = mechanism[-1]
        parts.append({1: "LLS", 5: "HLS-GMAC"}.get(mech, f"mechanism {mech}") + f" (id {mech})")
    if 0xA6 in fields:
        parts.append("calling-AP-title")
    if 0xA4 in fields:
        parts.append("responding-AP-title")
    if 0xAC in fields:
        value = fields[0xAC][2:]
        if name == "AARQ" and len(value) >= 8:
            ctx.ctos = value
            parts.append(f"CtoS ({len(value)} octets)")
        else:
            parts.append("password")
    if 0xAA in fields:
        ctx.stoc = fields[0xAA][2:]
        parts.append(f"StoC ({len(ctx.stoc)} octets)")
    if 0x80 in fields:
        reason = fields[0x80][-1]
        parts.append(f"reason {'normal' if reason == 0 else reason} ({reason})")
    if 0xBE in fields:
        user = fields[0xBE][2:]  # 04 len <xDLMS APDU>
        tag = user[0]
        if tag in (0x21, 0x28):
            length, start = _ber_length(user, 1)
            title = b""
            if ctx.keys is not None:
                keys = ctx.keys
                title = keys.client_system_title if sender == "client" else keys.server_system_title
            kind = "glo-initiate-request" if tag == 0x21 else "glo-initiate-response"
            protection, plain = _protected(kind, user[start : start + length], title, ctx)
            info["protection"] = protection
            parts.append(f"ciphered {_describe_xdlms(plain, ctx)} ({kind})")
        else:
            parts.append(f"clear {_describe_xdlms(user, ctx)}")
            info["xdlms"] = user.hex()
    return ", ".join(parts)


def _annotate(apdu: bytes, sender: str, ctx: _Context, info: dict[str, Any]) -> str:
    tag = apdu[0]
    if tag in _ACSE:
        return _acse(apdu, sender, ctx, info)
    keys = ctx.keys
    own_title = b""
    if keys is not None:
        own_title = keys.client_system_title if sender == "client" else keys.server_system_title
    if tag in _GLO:
        length, pos = _ber_length(apdu, 1)
        protection, plain = _protected(_GLO[tag], apdu[pos : pos + length], own_title, ctx)
        info["protection"] = protection
        return f"{_GLO[tag]}: {_describe_xdlms(plain, ctx)}"
    if tag == 0xDB:
        title_len = apdu[1]
        title = apdu[2 : 2 + title_len]
        length, pos = _ber_length(apdu, 2 + title_len)
        kind = "general-glo-ciphering"
        protection, plain = _protected(kind, apdu[pos : pos + length], title, ctx)
        info["protection"] = protection
        return f"{kind} (system title {title.hex()}): {_describe_xdlms(plain, ctx)}"
    return _describe_xdlms(apdu, ctx)


def _encoded_by(apdu: bytes, sender: str) -> str:
    if sender == "client":
        return "gurux-dlms client"
    if apdu[0] == 0x61 and b"\xa4\x0a\x04\x08" in apdu:  # responding-AP-title: lab's AARE
        return "lab server: own ACSE encoder, Gurux InitiateResponse inside"
    if apdu[0] == 0x63:
        return "lab server: own RLRE"
    if apdu[0] == 0xCF:
        return "gurux-dlms server; f(CtoS) by the lab's association via Gurux's GXSecure"
    return "gurux-dlms server"


def build_vector(
    trace: Sequence[dict[str, str]],
    header: dict[str, Any],
    keys: VectorKeys | None,
) -> dict[str, Any]:
    """Annotated vector: ``header`` fields, then challenges, counters and the frames."""
    ctx = _Context(keys)
    frames: list[dict[str, Any]] = []
    for index, item in enumerate(trace):
        raw = bytes.fromhex(item["hex"])
        sender = "client" if item["dir"] == "tx" else "server"
        apdu = raw[8:]
        info: dict[str, Any] = {}
        description = _annotate(apdu, sender, ctx, info)
        frames.append(
            {
                "index": index,
                "dir": item["dir"],
                "sender": sender,
                "encoded_by": _encoded_by(apdu, sender),
                "description": description,
                "wrapper": {
                    "version": int.from_bytes(raw[0:2], "big"),
                    "source": int.from_bytes(raw[2:4], "big"),
                    "destination": int.from_bytes(raw[4:6], "big"),
                    "length": int.from_bytes(raw[6:8], "big"),
                },
                "hex": raw.hex(),
                "apdu": apdu.hex(),
                **info,
            }
        )
    vector = dict(header)
    if keys is not None:
        vector.setdefault("keys", {"ek": keys.ek.hex(), "ak": keys.ak.hex()})
        vector.setdefault(
            "system_titles",
            {"client": keys.client_system_title.hex(), "server": keys.server_system_title.hex()},
        )
        vector["challenges"] = {"ctos": ctx.ctos.hex(), "stoc": ctx.stoc.hex()}
        vector["invocation_counters"] = _counters(frames)
    vector["frames"] = frames
    return vector


def _counters(frames: Sequence[dict[str, Any]]) -> dict[str, list[int]]:
    """Invocation counters in the order used, per sender, including the HLS-GMAC answers."""
    out: dict[str, list[int]] = {"client": [], "server": []}
    for frame in frames:
        protection = frame.get("protection")
        if protection is None:
            continue
        plain = bytes.fromhex(protection["plaintext"])
        answer = _hls_answer(plain)
        if answer is not None:  # f(StoC) / f(CtoS) took its own IC before the APDU's
            out[frame["sender"]].append(int.from_bytes(answer[1:5], "big"))
        out[frame["sender"]].append(protection["invocation_counter"])
    return out


def _hls_answer(plain: bytes) -> bytes | None:
    """f(StoC) of an action-request or f(CtoS) of an action-response, if the APDU has one."""
    if plain[:2] == b"\xc3\x01" and plain[3:5] == b"\x00\x0f" and plain[11] == 1:
        data = plain[13:]  # after optional-data flag
    elif plain[:2] == b"\xc7\x01" and plain[3] == 0 and len(plain) > 5 and plain[4] == 1:
        data = plain[6:]  # result 0, return-parameters present, Data choice 0
    else:
        return None
    if data[0] != 0x09:
        return None
    return data[2 : 2 + data[1]]


# --- checks ---------------------------------------------------------------------------


def check_vector(vector: dict[str, Any]) -> list[str]:
    """Everything in a vector file that does not hold; empty when it is consistent."""
    problems: list[str] = []
    keys = None
    if "keys" in vector:
        keys = VectorKeys(
            bytes.fromhex(vector["keys"]["ek"]),
            bytes.fromhex(vector["keys"]["ak"]),
            bytes.fromhex(vector["system_titles"]["client"]),
            bytes.fromhex(vector["system_titles"]["server"]),
        )
    for frame in vector["frames"]:
        where = f"frame {frame['index']}"
        raw = bytes.fromhex(frame["hex"])
        if raw[8:].hex() != frame["apdu"] or int.from_bytes(raw[6:8], "big") != len(raw) - 8:
            problems.append(f"{where}: wrapper length or payload does not match")
        protection = frame.get("protection")
        if protection is None:
            continue
        if keys is None:
            problems.append(f"{where}: protected frame in a vector without keys")
            continue
        title = bytes.fromhex(protection["system_title"])
        expected_title = (
            keys.client_system_title if frame["sender"] == "client" else keys.server_system_title
        )
        if title != expected_title:
            problems.append(f"{where}: system title is not the {frame['sender']}'s")
        plain = bytes.fromhex(protection["plaintext"])
        answer = _hls_answer(plain)
        if answer is None:
            continue
        challenge = vector["challenges"]["stoc" if frame["sender"] == "client" else "ctos"]
        ic = int.from_bytes(answer[1:5], "big")
        expected = gmac(title, ic, bytes.fromhex(challenge), keys.ek, keys.ak)
        if answer != expected:
            problems.append(f"{where}: HLS-GMAC answer does not verify")
    problems.extend(_check_openings(vector, keys))
    return problems


def _check_openings(vector: dict[str, Any], keys: VectorKeys | None) -> list[str]:
    """Re-derive every plaintext from the frame bytes, so a hand edit cannot go unnoticed."""
    rebuilt = build_vector([{"dir": f["dir"], "hex": f["hex"]} for f in vector["frames"]], {}, keys)
    problems: list[str] = []
    for old, new in zip(vector["frames"], rebuilt["frames"], strict=True):
        if old.get("protection") != new.get("protection"):
            problems.append(f"frame {old['index']}: stored plaintext is not what the bytes open to")
        if old["description"] != new["description"]:
            problems.append(f"frame {old['index']}: description differs from the bytes")
    for key in ("challenges", "invocation_counters"):
        if vector.get(key) != rebuilt.get(key):
            problems.append(f"{key} differ from the frames")
    return problems
