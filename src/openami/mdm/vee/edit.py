"""Editing: a person replaces values, says why, and the previous version stays.

An edit is a new version of a validated read carrying the ``EDITED`` flag (CIM 3.7.0), the
origin ``EDITED``, the user and the reason, written in one atomic file with the values it
changes, so there is no edit without its audit record (``ValidatedStore.audit`` lists them
next to the versions they replaced). The failure flags of the read stay (the audit shows why
it needed a person); the estimation bits go, since the value is no longer an estimate. Later
VEE passes leave edited reads alone (``engine.new_versions``). Only reads VEE has stored can
be edited: VEE stores a row for every expected interval, missing ones included, so "not
stored" means the day was never validated, or the key is wrong.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from openami.errors import AmiError
from openami.mdm.vee.flags import ESTIMATED, FLAG_DTYPE, Quality
from openami.store.validated import KEY, Origin, ValidatedStore, day_of

__all__ = ["EditError", "edit_reads"]


class EditError(AmiError):
    """An edit that cannot be made: no user or reason, or a read that is not stored."""


def edit_reads(
    store: ValidatedStore,
    edits: pl.DataFrame,
    *,
    user: str,
    reason: str,
    at: datetime,
) -> pl.DataFrame:
    """Store ``edits`` (``meter_id``, ``channel``, ``interval_end`` in Unix seconds,
    ``value_wh``) as new versions by ``user`` for ``reason`` at ``at`` (aware). Returns the
    rows written."""
    if not user.strip() or not reason.strip():
        raise EditError("an edit needs the user who makes it and the reason")
    if at.tzinfo is None:
        raise EditError("the edit time must be timezone-aware")
    if edits.height == 0:
        return edits
    wanted = edits.select(
        pl.col("meter_id").cast(pl.Int64),
        pl.col("channel").cast(pl.Int8),
        pl.col("interval_end").cast(pl.Int64),
        pl.col("value_wh").cast(pl.Int64),
    )
    if wanted.select(pl.struct(KEY).is_duplicated().any()).item():
        raise EditError("the same read is edited twice in one edit")
    if (wanted["value_wh"] < 0).any():
        raise EditError("an interval value cannot be negative")
    days = sorted({day_of(int(t)) for t in wanted["interval_end"].to_list()})
    meters = wanted["meter_id"].unique()
    current = pl.concat([store.current(d, meters) for d in days])
    joined = wanted.join(
        current.select(
            *KEY,
            pl.col("version").alias("_version"),
            pl.col("flags").alias("_flags"),
        ),
        on=KEY,
        how="left",
    )
    unknown = joined.filter(pl.col("_version").is_null())
    if unknown.height:
        first = unknown.row(0, named=True)
        raise EditError(
            f"{unknown.height} read(s) not validated yet, e.g. meter {first['meter_id']} "
            f"channel {first['channel']} at {first['interval_end']}"
        )
    keep = ~int(ESTIMATED) & 0xFFFFFFFF
    rows = joined.select(
        *KEY,
        "value_wh",
        (
            (pl.col("_flags") & pl.lit(keep, FLAG_DTYPE)) | pl.lit(int(Quality.EDITED), FLAG_DTYPE)
        ).alias("flags"),
        pl.lit(int(Origin.EDITED), dtype=pl.Int8).alias("origin"),
        (pl.col("_version") + 1).cast(pl.Int16).alias("version"),
        pl.lit(user).alias("edited_by"),
        pl.lit(reason).alias("reason"),
    )
    store.append(rows, written_at=at)
    return rows
