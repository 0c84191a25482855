"""A COSEM object model: objects made from the class tables, answering GET, SET and ACTION.

An object holds static attribute values and, for values that change (a register, a clock, a
load profile), a reader that computes the value when asked. Access rights come from the class
table unless the object narrows them. Profile generic buffers support selective access by
range (selector 1, on a capture object such as the clock) and by entry (selector 2).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from openami.errors import DecodeError
from openami.protocols.dlms.axdr import Data, DataType
from openami.protocols.dlms.cosem.classes import CLASSES, Access, InterfaceClass
from openami.protocols.dlms.cosem_datetime import decode_datetime
from openami.protocols.dlms.services import (
    ActionResult,
    AttributeDescriptor,
    DataAccessResult,
    MethodDescriptor,
    Selection,
)

__all__ = ["CosemObject", "ObjectModel", "select_by_entry", "select_by_range"]

Reader = Callable[[Selection | None], "Data | DataAccessResult"]
Writer = Callable[[Data], DataAccessResult]
Invoker = Callable[[Data | None], tuple[ActionResult, Data | None]]


@dataclass
class CosemObject:
    class_id: int
    logical_name: bytes
    values: dict[int, Data] = field(default_factory=dict)
    readers: dict[int, Reader] = field(default_factory=dict)
    writers: dict[int, Writer] = field(default_factory=dict)
    invokers: dict[int, Invoker] = field(default_factory=dict)
    access: dict[int, Access] = field(default_factory=dict)  # narrows the class defaults

    def __post_init__(self) -> None:
        if self.class_id not in CLASSES:
            raise ValueError(f"interface class {self.class_id} is not modelled")
        if len(self.logical_name) != 6:
            raise ValueError("a logical name is 6 octets")

    @property
    def interface(self) -> InterfaceClass:
        return CLASSES[self.class_id]

    def allowed(self, attribute_id: int, wanted: Access) -> bool:
        spec = self.interface.attribute(attribute_id)
        if spec is None:
            return False
        return wanted in self.access.get(attribute_id, spec.access)


class ObjectModel:
    def __init__(self, objects: Sequence[CosemObject] = ()) -> None:
        self._objects: dict[tuple[int, bytes], CosemObject] = {}
        for obj in objects:
            self.add(obj)

    def add(self, obj: CosemObject) -> None:
        self._objects[(obj.class_id, obj.logical_name)] = obj

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._objects.values())

    def find(self, class_id: int, logical_name: bytes) -> CosemObject | None:
        return self._objects.get((class_id, logical_name))

    def get(
        self, d: AttributeDescriptor, selection: Selection | None = None
    ) -> Data | DataAccessResult:
        obj = self.find(d.class_id, d.instance_id)
        if obj is None:
            return DataAccessResult.OBJECT_UNDEFINED
        if d.attribute_id == 1:
            return Data(DataType.OCTET_STRING, obj.logical_name)
        if not obj.allowed(d.attribute_id, Access.READ):
            known = obj.interface.attribute(d.attribute_id) is not None
            return (
                DataAccessResult.READ_WRITE_DENIED if known else DataAccessResult.OBJECT_UNDEFINED
            )
        reader = obj.readers.get(d.attribute_id)
        if reader is not None:
            return reader(selection)
        if selection is not None:
            return DataAccessResult.SCOPE_OF_ACCESS_VIOLATED
        value = obj.values.get(d.attribute_id)
        return value if value is not None else DataAccessResult.OBJECT_UNAVAILABLE

    def set(self, d: AttributeDescriptor, value: Data) -> DataAccessResult:
        obj = self.find(d.class_id, d.instance_id)
        if obj is None:
            return DataAccessResult.OBJECT_UNDEFINED
        if not obj.allowed(d.attribute_id, Access.WRITE):
            return DataAccessResult.READ_WRITE_DENIED
        writer = obj.writers.get(d.attribute_id)
        if writer is not None:
            return writer(value)
        current = obj.values.get(d.attribute_id)
        if current is not None and current.type is not value.type:
            return DataAccessResult.TYPE_UNMATCHED
        obj.values[d.attribute_id] = value
        return DataAccessResult.SUCCESS

    def action(
        self, m: MethodDescriptor, parameters: Data | None
    ) -> tuple[ActionResult, Data | None]:
        obj = self.find(m.class_id, m.instance_id)
        if obj is None:
            return ActionResult.OBJECT_UNDEFINED, None
        if obj.interface.method(m.method_id) is None:
            return ActionResult.OBJECT_UNDEFINED, None
        invoker = obj.invokers.get(m.method_id)
        if invoker is None:
            return ActionResult.READ_WRITE_DENIED, None
        return invoker(parameters)


# --- profile generic selective access --------------------------------------------------------


def _instant(value: Data) -> float:
    if value.type not in (DataType.OCTET_STRING, DataType.DATE_TIME) or len(value.value) != 12:
        raise DecodeError("range bound is not a date-time")
    return decode_datetime(value.value).timestamp()


def _columns(selected: Data, captures: Sequence[tuple[int, bytes, int]]) -> list[int] | None:
    """Indexes of the selected capture objects; None means all columns."""
    if selected.type is not DataType.ARRAY:
        raise DecodeError("selected values are not an array")
    if not selected.value:
        return None
    out = []
    for item in selected.value:
        if item.type is not DataType.STRUCTURE or len(item.value) < 3:
            raise DecodeError("a selected value is not a capture object definition")
        key = (item.value[0].value, item.value[1].value, item.value[2].value)
        if key not in captures:
            raise DecodeError("a selected value is not among the capture objects")
        out.append(captures.index(key))
    return out


def _project(rows: Sequence[tuple[Data, ...]], columns: list[int] | None) -> Data:
    if columns is None:
        return Data(DataType.ARRAY, tuple(Data(DataType.STRUCTURE, row) for row in rows))
    return Data(
        DataType.ARRAY,
        tuple(Data(DataType.STRUCTURE, tuple(row[c] for c in columns)) for row in rows),
    )


def select_by_range(
    rows: Sequence[tuple[Data, ...]],
    captures: Sequence[tuple[int, bytes, int]],
    parameters: Data,
) -> Data | DataAccessResult:
    """range_descriptor: restricting capture object, from and to (inclusive), columns."""
    try:
        if parameters.type is not DataType.STRUCTURE or len(parameters.value) != 4:
            raise DecodeError("range descriptor is not a structure of four")
        restricting, low, high, selected = parameters.value
        if restricting.type is not DataType.STRUCTURE or len(restricting.value) != 4:
            raise DecodeError("restricting object is malformed")
        key = (restricting.value[0].value, restricting.value[1].value, restricting.value[2].value)
        if key not in captures:
            return DataAccessResult.OBJECT_UNAVAILABLE
        column = list(captures).index(key)
        lo, hi = _instant(low), _instant(high)
        columns = _columns(selected, captures)
        picked = [row for row in rows if lo <= _instant(row[column]) <= hi]
    except DecodeError:
        return DataAccessResult.TYPE_UNMATCHED
    return _project(picked, columns)


def select_by_entry(rows: Sequence[tuple[Data, ...]], parameters: Data) -> Data | DataAccessResult:
    """entry_descriptor: from/to entry (1-based, 0 = last) and from/to column (0 = last)."""
    if parameters.type is not DataType.STRUCTURE or len(parameters.value) != 4:
        return DataAccessResult.TYPE_UNMATCHED
    first, last, first_col, last_col = (int(v.value) for v in parameters.value)
    if first < 1 or (last and last < first) or first_col < 1 or (last_col and last_col < first_col):
        return DataAccessResult.SCOPE_OF_ACCESS_VIOLATED
    chosen = rows[first - 1 : last or None]
    return Data(
        DataType.ARRAY,
        tuple(Data(DataType.STRUCTURE, row[first_col - 1 : last_col or None]) for row in chosen),
    )
