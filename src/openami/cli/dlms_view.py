"""Turning decoded DLMS frames into plain data (for --json) and text (for people)."""

from __future__ import annotations

import contextlib
import dataclasses
from enum import Enum
from typing import Any

from openami.errors import DecodeError
from openami.protocols.dlms.axdr import BitString, Data, DataType
from openami.protocols.dlms.cosem_datetime import decode_datetime

__all__ = ["plain", "render"]


def plain(value: Any) -> Any:
    """JSON-ready form: bytes as hex, enums by name, COSEM data as {type, value}."""
    if isinstance(value, Data):
        out: dict[str, Any] = {
            "type": value.type.name.lower().replace("_", "-"),
            "value": plain(value.value),
        }
        if (
            value.type in (DataType.OCTET_STRING, DataType.DATE_TIME)
            and isinstance(value.value, bytes)
            and len(value.value) == 12
        ):
            with contextlib.suppress(DecodeError):  # not every 12-octet string is a date-time
                out["datetime"] = decode_datetime(value.value).isoformat()
        return out
    if isinstance(value, BitString):
        return {"bits": value.length, "hex": value.bits.hex()}
    if isinstance(value, Enum):
        return value.name.lower()
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"apdu": type(value).__name__} | {
            f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    return value


def render(value: Any, indent: int = 0) -> list[str]:
    """An indented outline of ``plain(value)``."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:")
                lines += render(item, indent + 1)
            else:
                lines.append(f"{pad}{key}: {item}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list):
                lines.append(f"{pad}-")
                lines += render(item, indent + 1)
            else:
                lines.append(f"{pad}- {item}")
    else:
        lines.append(f"{pad}{value}")
    return lines
