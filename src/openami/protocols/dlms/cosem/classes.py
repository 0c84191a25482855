"""COSEM interface classes (IEC 62056-6-2) as declarative tables.

Each class lists its attributes (id, name, default access) and methods (id, name). The object
model walks these tables: a GET of an attribute a class does not have is ``object-undefined``
without a line of class-specific code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Flag

__all__ = ["CLASSES", "Access", "Attribute", "InterfaceClass", "Method"]


class Access(Flag):
    NONE = 0
    READ = 1
    WRITE = 2
    READ_WRITE = 3


R, W, RW = Access.READ, Access.WRITE, Access.READ_WRITE


@dataclass(frozen=True)
class Attribute:
    id: int
    name: str
    access: Access = R


@dataclass(frozen=True)
class Method:
    id: int
    name: str


@dataclass(frozen=True)
class InterfaceClass:
    class_id: int
    version: int
    name: str
    attributes: tuple[Attribute, ...]
    methods: tuple[Method, ...] = ()

    def attribute(self, attribute_id: int) -> Attribute | None:
        return next((a for a in self.attributes if a.id == attribute_id), None)

    def method(self, method_id: int) -> Method | None:
        return next((m for m in self.methods if m.id == method_id), None)


def _cls(class_id: int, version: int, name: str, attrs: str, methods: str = "") -> InterfaceClass:
    """Build a class from 'name:access' lists; attribute 1 is always logical_name (read)."""
    attributes = [Attribute(1, "logical_name", R)]
    for i, spec in enumerate(filter(None, attrs.split()), start=2):
        attr, _, access = spec.partition(":")
        attributes.append(Attribute(i, attr, {"r": R, "w": W, "rw": RW}[access or "r"]))
    return InterfaceClass(
        class_id,
        version,
        name,
        tuple(attributes),
        tuple(Method(i, m) for i, m in enumerate(filter(None, methods.split()), start=1)),
    )


CLASSES: dict[int, InterfaceClass] = {
    c.class_id: c
    for c in (
        _cls(1, 0, "Data", "value:rw"),
        _cls(3, 0, "Register", "value:rw scaler_unit", "reset"),
        _cls(4, 0, "Extended register", "value:rw scaler_unit status capture_time", "reset"),
        _cls(
            5,
            0,
            "Demand register",
            "current_average_value last_average_value scaler_unit status capture_time "
            "start_time_current period:rw number_of_periods:rw",
            "reset next_period",
        ),
        _cls(
            7,
            1,
            "Profile generic",
            "buffer capture_objects:rw capture_period:rw sort_method:rw sort_object:rw "
            "entries_in_use profile_entries:rw",
            "reset capture",
        ),
        _cls(
            8,
            0,
            "Clock",
            "time:rw time_zone:rw status daylight_savings_begin:rw daylight_savings_end:rw "
            "daylight_savings_deviation:rw daylight_savings_enabled:rw clock_base",
            "adjust_to_quarter adjust_to_measuring_period adjust_to_minute adjust_to_preset_time "
            "preset_adjusting_time shift_time",
        ),
        _cls(
            15,
            2,
            "Association LN",
            "object_list associated_partners_id application_context_name xdlms_context_info "
            "authentication_mechanism_name secret:w association_status security_setup_reference "
            "user_list current_user",
            "reply_to_hls_authentication change_hls_secret add_object remove_object add_user "
            "remove_user",
        ),
        _cls(17, 0, "SAP assignment", "sap_assignment_list", "connect_logical_device"),
        _cls(
            18,
            0,
            "Image transfer",
            "image_block_size image_transferred_blocks_status "
            "image_first_not_transferred_block_number image_transfer_enabled:rw "
            "image_transfer_status image_to_activate_info",
            "image_transfer_initiate image_block_transfer image_verify image_activate",
        ),
        _cls(
            20,
            0,
            "Activity calendar",
            "calendar_name_active season_profile_active week_profile_table_active "
            "day_profile_table_active calendar_name_passive:rw season_profile_passive:rw "
            "week_profile_table_passive:rw day_profile_table_passive:rw "
            "activate_passive_calendar_time:rw",
            "activate_passive_calendar",
        ),
        _cls(22, 0, "Single action schedule", "executed_script:rw type:rw execution_time:rw"),
        _cls(
            40,
            0,
            "Push setup",
            "push_object_list:rw send_destination_and_method:rw communication_window:rw "
            "randomisation_start_interval:rw number_of_retries:rw repetition_delay:rw",
            "push",
        ),
        _cls(
            64,
            0,
            "Security setup",
            "security_policy security_suite client_system_title server_system_title",
            "security_activate global_key_transfer",
        ),
        _cls(
            70,
            0,
            "Disconnect control",
            "output_state control_state control_mode:rw",
            "remote_disconnect remote_reconnect",
        ),
        _cls(
            71,
            0,
            "Limiter",
            "monitored_value:rw threshold_active threshold_normal:rw threshold_emergency:rw "
            "min_over_threshold_duration:rw min_under_threshold_duration:rw emergency_profile:rw "
            "emergency_profile_group_id_list:rw emergency_profile_active actions:rw",
        ),
    )
}
