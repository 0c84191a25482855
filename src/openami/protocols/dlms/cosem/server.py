"""A DLMS/COSEM server session (sans-IO): one association, one object model.

``CosemSession.receive(apdu)`` returns the APDU to send back (or ``None``). GET answers
larger than the client's negotiated PDU size go out as data blocks (get-response-with-
datablock), fetched one by one with get-request-next.
"""

from __future__ import annotations

from openami.errors import DecodeError
from openami.protocols.dlms.apdu import Apdu
from openami.protocols.dlms.association import Reply, ServerAssociation, ServiceIndication
from openami.protocols.dlms.axdr import Data, DataType, decode_data, encode_data
from openami.protocols.dlms.cosem.model import ObjectModel
from openami.protocols.dlms.services import (
    ActionRequestNormal,
    ActionRequestWithFirstPBlock,
    ActionRequestWithList,
    ActionRequestWithPBlock,
    ActionResponseNextPBlock,
    ActionResponseNormal,
    ActionResponseWithList,
    ActionResult,
    AttributeDescriptor,
    DataAccessResult,
    ExceptionResponse,
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDataBlock,
    GetResponseWithList,
    Selection,
    SetRequestNormal,
    SetRequestWithDataBlock,
    SetRequestWithFirstDataBlock,
    SetRequestWithList,
    SetResponseDataBlock,
    SetResponseLastDataBlock,
    SetResponseNormal,
    SetResponseWithList,
)

__all__ = ["CosemSession", "object_list"]

SERVICE_NOT_ALLOWED, SERVICE_UNKNOWN, PDU_TOO_LONG = 1, 2, 4
MAX_INBOUND = 1 << 20  # octets one SET or ACTION may bring in blocks
CIPHER_OVERHEAD = 24  # ciphered service tag, length, SC, IC and tag around each block


class CosemSession:
    def __init__(self, model: ObjectModel, association: ServerAssociation) -> None:
        self.model = model
        self.association = association
        self._blocks: list[bytes] = []
        self._block_invoke = 0
        self._next_block = 0
        # an incoming SET or ACTION arriving in blocks: what it targets, and the data so far
        self._inbound: SetRequestWithFirstDataBlock | ActionRequestWithFirstPBlock | None = None
        self._inbound_data = bytearray()
        self._inbound_number = 0

    @property
    def transfer_in_progress(self) -> bool:
        """A long GET is being fetched block by block, or a SET/ACTION arriving in blocks."""
        return bool(self._blocks) or self._inbound is not None

    def receive(self, data: bytes, challenge: bytes = b"") -> bytes:
        event = self.association.receive(data, challenge)
        if isinstance(event, Reply):
            return event.data
        return self.association.respond(event, self._serve(event))

    def _serve(self, event: ServiceIndication) -> Apdu:
        request = event.request
        if isinstance(request, GetRequestNormal):
            selection = (
                None
                if request.access_selector is None or request.access_parameters is None
                else Selection(request.access_selector, request.access_parameters)
            )
            result = self.model.get(request.descriptor, selection)
            return self._answer_get(request.invoke_id, result)
        if isinstance(request, GetRequestNext):
            return self._next(request)
        if isinstance(request, GetRequestWithList):
            return GetResponseWithList(
                request.invoke_id, tuple(self.model.get(d, s) for d, s in request.items)
            )
        if isinstance(request, SetRequestNormal):
            return SetResponseNormal(
                request.invoke_id, self._set(request.descriptor, request.selection, request.value)
            )
        if isinstance(request, SetRequestWithList):
            return SetResponseWithList(
                request.invoke_id,
                tuple(
                    self._set(d, s, v)
                    for (d, s), v in zip(request.items, request.values, strict=False)
                ),
            )
        if isinstance(request, ActionRequestNormal):
            outcome, value = self.model.action(request.method, request.parameters)
            return ActionResponseNormal(request.invoke_id, outcome, value)
        if isinstance(request, ActionRequestWithList):
            outcomes = []
            for method, parameters in zip(request.methods, request.parameters, strict=False):
                outcomes.append(self.model.action(method, parameters))
            return ActionResponseWithList(request.invoke_id, tuple(outcomes))
        if isinstance(request, SetRequestWithFirstDataBlock | ActionRequestWithFirstPBlock):
            self._inbound, self._inbound_data, self._inbound_number = request, bytearray(), 0
            return self._inbound_block(
                request.invoke_id, request.last_block, request.block_number, request.raw_data
            )
        if isinstance(request, SetRequestWithDataBlock | ActionRequestWithPBlock):
            return self._inbound_block(
                request.invoke_id, request.last_block, request.block_number, request.raw_data
            )
        return ExceptionResponse(SERVICE_NOT_ALLOWED, SERVICE_UNKNOWN)

    def _inbound_block(self, invoke_id: int, last: bool, number: int, raw: bytes) -> Apdu:
        """Collect a SET value or ACTION parameters that arrive in numbered blocks."""
        first = self._inbound
        if first is None or number != self._inbound_number + 1:
            self._inbound = None
            if isinstance(first, ActionRequestWithFirstPBlock):
                return ActionResponseNormal(invoke_id, ActionResult.DATA_BLOCK_UNAVAILABLE)
            return SetResponseLastDataBlock(
                invoke_id, DataAccessResult.DATA_BLOCK_NUMBER_INVALID, number
            )
        self._inbound_number = number
        self._inbound_data += raw
        if len(self._inbound_data) > MAX_INBOUND:
            self._inbound = None
            return ExceptionResponse(SERVICE_NOT_ALLOWED, PDU_TOO_LONG)
        if not last:
            if isinstance(first, ActionRequestWithFirstPBlock):
                return ActionResponseNextPBlock(invoke_id, number)
            return SetResponseDataBlock(invoke_id, number)
        self._inbound = None
        try:
            value = decode_data(bytes(self._inbound_data))
        except DecodeError:
            if isinstance(first, ActionRequestWithFirstPBlock):
                return ActionResponseNormal(invoke_id, ActionResult.TYPE_UNMATCHED)
            return SetResponseLastDataBlock(invoke_id, DataAccessResult.TYPE_UNMATCHED, number)
        if isinstance(first, ActionRequestWithFirstPBlock):
            outcome, returned = self.model.action(first.method, value)
            return ActionResponseNormal(invoke_id, outcome, returned)
        result = self._set(first.descriptor, first.selection, value)
        return SetResponseLastDataBlock(invoke_id, result, number)

    def _set(
        self, d: AttributeDescriptor, selection: Selection | None, value: Data
    ) -> DataAccessResult:
        if selection is not None:
            return DataAccessResult.SCOPE_OF_ACCESS_VIOLATED
        return self.model.set(d, value)

    def _answer_get(self, invoke_id: int, result: Data | DataAccessResult) -> Apdu:
        if isinstance(result, DataAccessResult):
            return GetResponseNormal(invoke_id, result)
        encoded = encode_data(result)
        limit = max(64, (self.association.client_max_pdu or 0xFFFF) - CIPHER_OVERHEAD - 16)
        if len(encoded) + 4 <= limit:
            return GetResponseNormal(invoke_id, result)
        self._blocks = [encoded[i : i + limit] for i in range(0, len(encoded), limit)]
        self._block_invoke = invoke_id
        self._next_block = 1
        return GetResponseWithDataBlock(invoke_id, len(self._blocks) == 1, 1, self._blocks[0])

    def _next(self, request: GetRequestNext) -> Apdu:
        if not self._blocks:
            return GetResponseNormal(request.invoke_id, DataAccessResult.NO_LONG_GET_IN_PROGRESS)
        if request.block_number != self._next_block:
            self._blocks = []
            return GetResponseWithDataBlock(
                request.invoke_id,
                True,
                request.block_number,
                DataAccessResult.DATA_BLOCK_NUMBER_INVALID,
            )
        number = self._next_block + 1
        last = number == len(self._blocks)
        block = self._blocks[number - 1]
        self._next_block = number
        if last:
            self._blocks = []
        return GetResponseWithDataBlock(request.invoke_id, last, number, block)


def object_list(model: ObjectModel) -> Data:
    """Association LN attribute 2: every object with its class, version, name and access."""
    entries = []
    for obj in model:
        spec = obj.interface
        attribute_access = tuple(
            Data(
                DataType.STRUCTURE,
                (
                    Data(DataType.INTEGER, a.id),
                    Data(DataType.ENUM, obj.access.get(a.id, a.access).value),
                    Data(DataType.NULL, None),
                ),
            )
            for a in spec.attributes
        )
        method_access = tuple(
            Data(
                DataType.STRUCTURE,
                (
                    Data(DataType.INTEGER, m.id),
                    Data(DataType.ENUM, 1 if m.id in obj.invokers else 0),
                ),
            )
            for m in spec.methods
        )
        entries.append(
            Data(
                DataType.STRUCTURE,
                (
                    Data(DataType.LONG_UNSIGNED, spec.class_id),
                    Data(DataType.UNSIGNED, spec.version),
                    Data(DataType.OCTET_STRING, obj.logical_name),
                    Data(
                        DataType.STRUCTURE,
                        (
                            Data(DataType.ARRAY, attribute_access),
                            Data(DataType.ARRAY, method_access),
                        ),
                    ),
                ),
            )
        )
    return Data(DataType.ARRAY, tuple(entries))
