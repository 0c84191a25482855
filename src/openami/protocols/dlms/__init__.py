"""Sans-IO DLMS/COSEM: A-XDR, xDLMS APDUs, security suite 0, the 4-7 wrapper, OBIS codes."""

from openami.protocols.dlms.apdu import (
    Apdu,
    DataAccessResult,
    DataNotification,
    GeneralGloCiphering,
    GetRequestNormal,
    GetResponseNormal,
    decode_apdu,
    encode_apdu,
)
from openami.protocols.dlms.axdr import (
    BitString,
    CompactArray,
    Data,
    DataType,
    TypeDescription,
    decode_data,
    encode_data,
)
from openami.protocols.dlms.cosem_datetime import decode_datetime, encode_datetime
from openami.protocols.dlms.obis import ObisCode
from openami.protocols.dlms.security import (
    SC_AUTHENTICATED,
    SC_AUTHENTICATED_ENCRYPTED,
    SuiteZero,
)
from openami.protocols.dlms.wrapper import WrapperFrame, decode_wrapper, encode_wrapper

__all__ = [
    "SC_AUTHENTICATED",
    "SC_AUTHENTICATED_ENCRYPTED",
    "Apdu",
    "BitString",
    "CompactArray",
    "Data",
    "DataAccessResult",
    "DataNotification",
    "DataType",
    "GeneralGloCiphering",
    "GetRequestNormal",
    "GetResponseNormal",
    "ObisCode",
    "SuiteZero",
    "TypeDescription",
    "WrapperFrame",
    "decode_apdu",
    "decode_data",
    "decode_datetime",
    "decode_wrapper",
    "encode_apdu",
    "encode_data",
    "encode_datetime",
    "encode_wrapper",
]
