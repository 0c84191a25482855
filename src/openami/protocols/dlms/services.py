"""xDLMS GET, SET and ACTION services, exception-response, and service-specific ciphering,
as frozen dataclasses (their codec is in ``service_codec``). Layouts follow IEC 62056-5-3
(A-XDR): invoke-id-and-priority is one octet, descriptors are class-id (2), instance-id (6),
attribute/method-id (1).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from openami.protocols.dlms.axdr import Data

__all__ = [
    "ActionRequestNextPBlock",
    "ActionRequestNormal",
    "ActionRequestWithFirstPBlock",
    "ActionRequestWithList",
    "ActionRequestWithPBlock",
    "ActionResponseNextPBlock",
    "ActionResponseNormal",
    "ActionResponseWithList",
    "ActionResponseWithPBlock",
    "ActionResult",
    "AttributeDescriptor",
    "CipheredService",
    "DataAccessResult",
    "ExceptionResponse",
    "GetRequestNext",
    "GetRequestNormal",
    "GetRequestWithList",
    "GetResponseNormal",
    "GetResponseWithDataBlock",
    "GetResponseWithList",
    "MethodDescriptor",
    "Selection",
    "ServiceTag",
    "SetRequestNormal",
    "SetRequestWithDataBlock",
    "SetRequestWithFirstDataBlock",
    "SetRequestWithList",
    "SetResponseDataBlock",
    "SetResponseLastDataBlock",
    "SetResponseNormal",
    "SetResponseWithList",
]


class ServiceTag(IntEnum):
    GET_REQUEST = 0xC0
    SET_REQUEST = 0xC1
    ACTION_REQUEST = 0xC3
    GET_RESPONSE = 0xC4
    SET_RESPONSE = 0xC5
    ACTION_RESPONSE = 0xC7
    EXCEPTION_RESPONSE = 0xD8


# Service-specific ciphered APDUs: tag -> name. Global key (glo-) and dedicated key (ded-).
CIPHERED_TAGS: dict[int, str] = {
    0x21: "glo-initiate-request",
    0x28: "glo-initiate-response",
    0x2E: "glo-confirmed-service-error",
    0xC8: "glo-get-request",
    0xC9: "glo-set-request",
    0xCA: "glo-event-notification-request",
    0xCB: "glo-action-request",
    0xCC: "glo-get-response",
    0xCD: "glo-set-response",
    0xCF: "glo-action-response",
    0x41: "ded-initiate-request",
    0x48: "ded-initiate-response",
    0x4E: "ded-confirmed-service-error",
    0xD0: "ded-get-request",
    0xD1: "ded-set-request",
    0xD2: "ded-event-notification-request",
    0xD3: "ded-action-request",
    0xD4: "ded-get-response",
    0xD5: "ded-set-response",
    0xD7: "ded-action-response",
}


class DataAccessResult(IntEnum):
    SUCCESS = 0
    HARDWARE_FAULT = 1
    TEMPORARY_FAILURE = 2
    READ_WRITE_DENIED = 3
    OBJECT_UNDEFINED = 4
    OBJECT_CLASS_INCONSISTENT = 9
    OBJECT_UNAVAILABLE = 11
    TYPE_UNMATCHED = 12
    SCOPE_OF_ACCESS_VIOLATED = 13
    DATA_BLOCK_UNAVAILABLE = 14
    LONG_GET_ABORTED = 15
    NO_LONG_GET_IN_PROGRESS = 16
    LONG_SET_ABORTED = 17
    NO_LONG_SET_IN_PROGRESS = 18
    DATA_BLOCK_NUMBER_INVALID = 19
    OTHER_REASON = 250


class ActionResult(IntEnum):
    SUCCESS = 0
    HARDWARE_FAULT = 1
    TEMPORARY_FAILURE = 2
    READ_WRITE_DENIED = 3
    OBJECT_UNDEFINED = 4
    OBJECT_CLASS_INCONSISTENT = 9
    OBJECT_UNAVAILABLE = 11
    TYPE_UNMATCHED = 12
    SCOPE_OF_ACCESS_VIOLATED = 13
    DATA_BLOCK_UNAVAILABLE = 14
    LONG_ACTION_ABORTED = 15
    NO_LONG_ACTION_IN_PROGRESS = 16
    OTHER_REASON = 250


@dataclass(frozen=True, slots=True)
class AttributeDescriptor:
    class_id: int
    instance_id: bytes
    attribute_id: int


@dataclass(frozen=True, slots=True)
class MethodDescriptor:
    class_id: int
    instance_id: bytes
    method_id: int


@dataclass(frozen=True, slots=True)
class Selection:
    selector: int
    parameters: Data


# --- GET ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetRequestNormal:
    invoke_id: int
    class_id: int
    instance_id: bytes
    attribute_id: int
    access_selector: int | None = None
    access_parameters: Data | None = None

    @property
    def descriptor(self) -> AttributeDescriptor:
        return AttributeDescriptor(self.class_id, self.instance_id, self.attribute_id)


@dataclass(frozen=True, slots=True)
class GetRequestNext:
    invoke_id: int
    block_number: int


@dataclass(frozen=True, slots=True)
class GetRequestWithList:
    invoke_id: int
    items: tuple[tuple[AttributeDescriptor, Selection | None], ...]


@dataclass(frozen=True, slots=True)
class GetResponseNormal:
    invoke_id: int
    result: Data | DataAccessResult


@dataclass(frozen=True, slots=True)
class GetResponseWithDataBlock:
    invoke_id: int
    last_block: bool
    block_number: int
    raw_data: bytes | DataAccessResult


@dataclass(frozen=True, slots=True)
class GetResponseWithList:
    invoke_id: int
    results: tuple[Data | DataAccessResult, ...]


# --- SET ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetRequestNormal:
    invoke_id: int
    descriptor: AttributeDescriptor
    selection: Selection | None
    value: Data


@dataclass(frozen=True, slots=True)
class SetRequestWithFirstDataBlock:
    invoke_id: int
    descriptor: AttributeDescriptor
    selection: Selection | None
    last_block: bool
    block_number: int
    raw_data: bytes


@dataclass(frozen=True, slots=True)
class SetRequestWithDataBlock:
    invoke_id: int
    last_block: bool
    block_number: int
    raw_data: bytes


@dataclass(frozen=True, slots=True)
class SetRequestWithList:
    invoke_id: int
    items: tuple[tuple[AttributeDescriptor, Selection | None], ...]
    values: tuple[Data, ...]


@dataclass(frozen=True, slots=True)
class SetResponseNormal:
    invoke_id: int
    result: DataAccessResult


@dataclass(frozen=True, slots=True)
class SetResponseDataBlock:
    invoke_id: int
    block_number: int


@dataclass(frozen=True, slots=True)
class SetResponseLastDataBlock:
    invoke_id: int
    result: DataAccessResult
    block_number: int


@dataclass(frozen=True, slots=True)
class SetResponseWithList:
    invoke_id: int
    results: tuple[DataAccessResult, ...]


# --- ACTION ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActionRequestNormal:
    invoke_id: int
    method: MethodDescriptor
    parameters: Data | None = None


@dataclass(frozen=True, slots=True)
class ActionRequestNextPBlock:
    invoke_id: int
    block_number: int


@dataclass(frozen=True, slots=True)
class ActionRequestWithList:
    invoke_id: int
    methods: tuple[MethodDescriptor, ...]
    parameters: tuple[Data, ...]


@dataclass(frozen=True, slots=True)
class ActionRequestWithFirstPBlock:
    invoke_id: int
    method: MethodDescriptor
    last_block: bool
    block_number: int
    raw_data: bytes


@dataclass(frozen=True, slots=True)
class ActionRequestWithPBlock:
    invoke_id: int
    last_block: bool
    block_number: int
    raw_data: bytes


@dataclass(frozen=True, slots=True)
class ActionResponseNormal:
    invoke_id: int
    result: ActionResult
    return_data: Data | DataAccessResult | None = None


@dataclass(frozen=True, slots=True)
class ActionResponseWithPBlock:
    invoke_id: int
    last_block: bool
    block_number: int
    raw_data: bytes


@dataclass(frozen=True, slots=True)
class ActionResponseWithList:
    invoke_id: int
    results: tuple[tuple[ActionResult, Data | DataAccessResult | None], ...]


@dataclass(frozen=True, slots=True)
class ActionResponseNextPBlock:
    invoke_id: int
    block_number: int


# --- exception and ciphered --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExceptionResponse:
    """state-error: 1 service-not-allowed, 2 service-unknown. service-error: 1
    operation-not-possible, 2 service-not-supported, 3 other-reason, 4 pdu-too-long,
    5 deciphering-error, 6 invocation-counter-error (then ``invocation_counter`` is set)."""

    state_error: int
    service_error: int
    invocation_counter: int | None = None


@dataclass(frozen=True, slots=True)
class CipheredService:
    """A service-specific ciphered APDU (glo-/ded-): its tag and the ciphered content."""

    tag: int
    ciphered_content: bytes

    @property
    def name(self) -> str:
        return CIPHERED_TAGS.get(self.tag, f"0x{self.tag:02x}")
