"""Sans-IO ECHONET Lite (Route B): format-1 frames, property maps, the node profile and the
low-voltage smart electric energy meter (0x0288) as declarative property tables, a node that
answers requests and a client for the HEMS side."""

from openami.protocols.echonet.client import CLASSES, CONTROLLER, EchonetClient
from openami.protocols.echonet.edt import JST
from openami.protocols.echonet.frame import (
    ECHONET_PORT,
    EOJ,
    ESV,
    MULTICAST_IPV4,
    MULTICAST_IPV6,
    Frame,
    Property,
    decode_frame,
    encode_frame,
)
from openami.protocols.echonet.meter import (
    LOW_VOLTAGE_SMART_METER_CLASS,
    UNITS,
    FixedTimeReading,
    HalfHourlyHistory,
    History2,
    History2Setting,
    LowVoltageMeterSource,
    LowVoltageSmartMeter,
)
from openami.protocols.echonet.node import EchonetNode
from openami.protocols.echonet.node_profile import (
    NODE_PROFILE,
    NODE_PROFILE_CLASS,
    IdentificationNumber,
    NodeProfile,
    Version,
)
from openami.protocols.echonet.objects import (
    DEVICE_SUPERCLASS,
    Access,
    EchonetObject,
    ObjectClass,
    PropertySpec,
)
from openami.protocols.echonet.property_map import decode_property_map, encode_property_map

__all__ = [
    "CLASSES",
    "CONTROLLER",
    "DEVICE_SUPERCLASS",
    "ECHONET_PORT",
    "EOJ",
    "ESV",
    "JST",
    "LOW_VOLTAGE_SMART_METER_CLASS",
    "MULTICAST_IPV4",
    "MULTICAST_IPV6",
    "NODE_PROFILE",
    "NODE_PROFILE_CLASS",
    "UNITS",
    "Access",
    "EchonetClient",
    "EchonetNode",
    "EchonetObject",
    "FixedTimeReading",
    "Frame",
    "HalfHourlyHistory",
    "History2",
    "History2Setting",
    "IdentificationNumber",
    "LowVoltageMeterSource",
    "LowVoltageSmartMeter",
    "NodeProfile",
    "ObjectClass",
    "Property",
    "PropertySpec",
    "Version",
    "decode_frame",
    "decode_property_map",
    "encode_frame",
    "encode_property_map",
]
