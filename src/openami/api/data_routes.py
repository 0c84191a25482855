"""The JSON REST routes: meters, usage points, interval reads (JSON, CSV or Parquet, paged),
register reads, events, consents and the audit trail. Every route asks ``caller`` who is
calling and what they may see; nothing outside that is ever read from the stores."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends, Header, Query, Request, Response

from openami.api.access import Caller, Denied, identify
from openami.api.cim_documents import end_device_events_xml, meter_readings_xml
from openami.api.data import CHANNELS, ORIGINS
from openami.api.errors_doc import DATA_ERRORS
from openami.api.state import ApiState
from openami.api.store import AccessRecord, Role

__all__ = ["audit", "caller", "router"]

router = APIRouter(prefix="/api/v1", tags=["data"], responses=DATA_ERRORS)
MAX_SPAN = timedelta(days=400)
PROTECTED: list[dict[str, list[str]]] = [{"apiKey": []}, {"oauth2": []}, {"customerLogin": []}]


def state_of(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


def caller(
    request: Request,
    x_api_key: Annotated[str | None, Header(description="An operator's API key.")] = None,
    authorization: Annotated[
        str | None, Header(description="Bearer access token, or a customer's Basic login.")
    ] = None,
) -> Caller:
    """The caller, identified, within its rate limit."""
    api = state_of(request)
    who = identify(api.store, x_api_key, authorization, api.meters_of)
    request.state.caller = who  # a refusal from here on is audited under this name
    api.limiter.take(who.who)
    return who


Who = Annotated[Caller, Depends(caller)]


def audit(request: Request, who: Caller | None, status: int, rows: int) -> None:
    """One line of the audit trail: who read what of whose data, when."""
    what = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    state_of(request).store.record(
        AccessRecord(
            at=datetime.now(UTC),
            who=who.who if who is not None else "anonymous",
            customer=who.customer if who is not None else None,
            what=f"{request.method} {what}",
            status=status,
            rows=rows,
        )
    )


def _instant(value: str | None, default: datetime, name: str) -> datetime:
    if value is None:
        return default
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Denied(400, f"{name} {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise Denied(400, f"{name} needs a UTC offset, e.g. 2026-08-03T00:00+09:00")
    return moment.astimezone(UTC)


def _span(who: Caller, start: str | None, end: str | None) -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    stop = _instant(end, now, "end")
    begin = who.clip(_instant(start, stop - timedelta(days=1), "start"))
    if stop <= begin:
        raise Denied(400, "end must be after start (and after what the consent allows)")
    if stop - begin > MAX_SPAN:
        raise Denied(400, f"at most {MAX_SPAN.days} days per request")
    return begin, stop


class Format(StrEnum):
    json = "json"
    csv = "csv"
    parquet = "parquet"
    cim = "cim"  # IEC 61968-9-shaped MeterReadings XML


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()


@router.get("/meters", openapi_extra={"security": PROTECTED})
def meters(request: Request, who: Who) -> dict[str, Any]:
    """The meters the caller may read, with where they are installed."""
    api = state_of(request)
    ids = None if who.meters is None else sorted(who.meters)
    rows = api.data.meters(datetime.now(UTC), ids)
    audit(request, who, 200, len(rows))
    return {
        "meters": [
            {
                "meter_id": m.meter_id,
                "serial": m.serial,
                "usage_point": m.usage_point,
                "area": m.area,
            }
            for m in rows
        ]
    }


@router.get("/usage-points", openapi_extra={"security": PROTECTED})
def usage_points(request: Request, who: Who) -> dict[str, Any]:
    """The usage points (premises) of the meters the caller may read, with their area and
    the meters installed there now."""
    ids = None if who.meters is None else sorted(who.meters)
    points: dict[str, dict[str, Any]] = {}
    for m in state_of(request).data.meters(datetime.now(UTC), ids):
        if m.usage_point is not None:
            point = points.setdefault(
                m.usage_point, {"usage_point": m.usage_point, "area": m.area, "meters": []}
            )
            point["meters"].append(m.meter_id)
    audit(request, who, 200, len(points))
    return {"usage_points": sorted(points.values(), key=lambda p: str(p["usage_point"]))}


_READS_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON (paged), or the whole span as CSV, Parquet or CIM MeterReadings XML",
        "content": {
            "application/json": {},
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
            "application/xml": {"schema": {"type": "string"}},
        },
    }
}
Start = Annotated[str | None, Query(description="ISO 8601, exclusive; default end - 1 day")]
End = Annotated[str | None, Query(description="ISO 8601, inclusive; default now")]
ChannelName = Annotated[str | None, Query(pattern="^(import|export)$")]
Page = Annotated[int, Query(ge=0, le=1_000_000)]
PageSize = Annotated[int, Query(ge=1, le=10_000)]


@router.get(
    "/meters/{meter_id}/interval-reads",
    openapi_extra={"security": PROTECTED},
    responses=_READS_DOC,
)
def interval_reads(
    request: Request,
    who: Who,
    meter_id: int,
    start: Start = None,
    end: End = None,
    channel: ChannelName = None,
    page: Page = 0,
    page_size: PageSize = 1_000,
    format: Annotated[Format, Query()] = Format.json,
) -> Any:
    """A meter's validated 30-minute reads over (start, end], with their quality: CIM
    ReadingQuality codes, the Green Button quality, origin (measured, estimated, edited,
    missing) and version. JSON is paged; CSV, Parquet and CIM give the whole span at once."""
    who.may_read(meter_id)
    return _reads(request, who, [meter_id], start, end, channel, page, page_size, format)


@router.get("/interval-reads", openapi_extra={"security": PROTECTED}, responses=_READS_DOC)
def bulk_interval_reads(
    request: Request,
    who: Who,
    meter_id: Annotated[list[int] | None, Query(max_length=10_000)] = None,
    meters: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{1,13}-[0-9]{1,13}$",
            description="A range of meter ids FIRST-LAST (at most 10,000), instead of meter_id",
        ),
    ] = None,
    start: Start = None,
    end: End = None,
    channel: ChannelName = None,
    page: Page = 0,
    page_size: PageSize = 1_000,
    format: Annotated[Format, Query()] = Format.parquet,
) -> Any:
    """The reads of many meters at once (up to 10,000: ``meter_id=1&meter_id=2...`` or
    ``meters=1-10000``), the bulk feed of a retailer or an operator; every meter must be
    one the caller may read."""
    wanted = set(meter_id or ())
    if meters is not None:
        first, last = (int(x) for x in meters.split("-"))
        if not 0 <= last - first < 10_000:
            raise Denied(400, "meters=FIRST-LAST must name 1 to 10,000 meters")
        wanted.update(range(first, last + 1))
    if not wanted or len(wanted) > 10_000:
        raise Denied(400, "give 1 to 10,000 meters (meter_id=... or meters=FIRST-LAST)")
    for meter in sorted(wanted):
        who.may_read(meter)
    return _reads(request, who, sorted(wanted), start, end, channel, page, page_size, format)


def _reads(
    request: Request,
    who: Caller,
    meters: list[int],
    start: str | None,
    end: str | None,
    channel: str | None,
    page: int,
    page_size: int,
    format: Format,
) -> Any:
    begin, stop = _span(who, start, end)
    channels = tuple(c for c, n in CHANNELS.items() if channel in (None, n))
    rows = state_of(request).data.interval_reads(meters, begin, stop, channels)
    if format is Format.cim:
        audit(request, who, 200, rows.height)
        return Response(meter_readings_xml(rows), media_type="application/xml")
    flat = rows.select(
        "meter_id",
        pl.col("channel").replace_strict(CHANNELS, return_dtype=pl.String).alias("channel"),
        pl.from_epoch("interval_end", time_unit="s")
        .dt.replace_time_zone("UTC")
        .alias("interval_end"),
        "value_wh",
        pl.col("origin").replace_strict(ORIGINS, return_dtype=pl.String),
        "version",
        pl.col("quality").list.join(" ").alias("quality"),
        "espi_quality",
    )
    if format is not Format.json:
        audit(request, who, 200, flat.height)
        buffer = io.BytesIO()
        if format is Format.csv:
            flat.write_csv(buffer)
            return Response(buffer.getvalue(), media_type="text/csv")
        flat.write_parquet(buffer)
        return Response(buffer.getvalue(), media_type="application/vnd.apache.parquet")
    chunk = flat.slice(page * page_size, page_size)
    audit(request, who, 200, chunk.height)
    more = (page + 1) * page_size < flat.height
    single = len(meters) == 1
    return {
        "meter_id": meters[0] if single else None,
        "start": begin.isoformat(),
        "end": stop.isoformat(),
        "total": flat.height,
        "page": page,
        "next_page": page + 1 if more else None,
        "reads": [
            {**r, "interval_end": r["interval_end"].isoformat()}
            for r in (chunk.drop("meter_id") if single else chunk).to_dicts()
        ],
    }


@router.get("/meters/{meter_id}/register-reads", openapi_extra={"security": PROTECTED})
def register_reads(
    request: Request, who: Who, meter_id: int, start: str | None = None, end: str | None = None
) -> dict[str, Any]:
    """The meter's import and export registers (Wh) at each interval end, as it sent them."""
    who.may_read(meter_id)
    begin, stop = _span(who, start, end)
    rows = state_of(request).data.register_reads([meter_id], begin, stop)
    audit(request, who, 200, rows.height)
    names = {3: "import_register", 4: "export_register"}
    return {
        "meter_id": meter_id,
        "reads": [
            {"register": names[int(r[1])], "interval_end": _iso(int(r[2])), "value_wh": int(r[3])}
            for r in rows.iter_rows()
        ],
    }


@router.get(
    "/meters/{meter_id}/events",
    openapi_extra={"security": PROTECTED},
    responses={
        200: {
            "description": "JSON, or CIM EndDeviceEvents XML (format=cim)",
            "content": {"application/json": {}, "application/xml": {"schema": {"type": "string"}}},
        }
    },
)
def events(
    request: Request,
    who: Who,
    meter_id: int,
    start: str | None = None,
    end: str | None = None,
    format: Annotated[str, Query(pattern="^(json|cim)$")] = "json",
) -> Any:
    """What the meter reported: power down and up, tamper, clock errors, ..."""
    from openami.protocols.dlms.notification import EventCode

    who.may_read(meter_id)
    begin, stop = _span(who, start, end)
    rows = state_of(request).data.meter_events([meter_id], begin, stop + timedelta(seconds=1))
    audit(request, who, 200, rows.height)
    if format == "cim":
        return Response(end_device_events_xml(rows), media_type="application/xml")

    def name(code: int) -> str:
        try:
            return EventCode(code).name.lower()
        except ValueError:
            return f"code_{code}"

    return {
        "meter_id": meter_id,
        "events": [
            {
                "time": _iso(int(r[1])),
                "event": name(int(r[2])),
                "code": int(r[2]),
                "value": int(r[3]),
            }
            for r in rows.select("meter_id", "time", "code", "value").iter_rows()
        ],
    }


@router.get("/consents", openapi_extra={"security": PROTECTED})
def consents(request: Request, who: Who) -> dict[str, Any]:
    """A customer's consents (an administrator sees every one)."""
    if who.kind == "customer":
        found = state_of(request).store.consents(who.customer)
    else:
        who.require(Role.ADMINISTRATOR)
        found = state_of(request).store.consents()
    audit(request, who, 200, len(found))
    now = datetime.now(UTC)
    return {
        "consents": [
            {
                "consent_id": c.consent_id,
                "client_id": c.client_id,
                "customer": c.customer,
                "scope": c.scope,
                "meters": list(c.meters),
                "data_from": c.data_from.isoformat(),
                "expires_at": c.expires_at.isoformat(),
                "active": c.active(now),
            }
            for c in found
        ]
    }


@router.delete("/consents/{consent_id}", openapi_extra={"security": PROTECTED})
def revoke_consent(request: Request, who: Who, consent_id: str) -> dict[str, Any]:
    """Withdraw a consent: its third party reads nothing from now on."""
    store = state_of(request).store
    mine = {c.consent_id for c in store.consents(who.customer)} if who.kind == "customer" else set()
    if who.kind != "customer":
        who.require(Role.ADMINISTRATOR)
    elif consent_id not in mine:
        raise Denied(404, f"no consent {consent_id} of this customer")
    done = store.revoke(consent_id, datetime.now(UTC))
    audit(request, who, 200, int(done))
    return {"consent_id": consent_id, "revoked": done}


@router.get("/audit", openapi_extra={"security": PROTECTED})
def audit_trail(
    request: Request,
    who: Who,
    customer: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, Any]:
    """Who read whose data, when: every access, newest first (administrators; a customer
    sees the accesses to their own data)."""
    if who.kind == "customer":
        customer = who.customer
    else:
        who.require(Role.ADMINISTRATOR)
    rows = state_of(request).store.accesses(customer, limit)
    return {
        "accesses": [
            {
                "at": r.at.isoformat(),
                "who": r.who,
                "customer": r.customer,
                "what": r.what,
                "status": r.status,
                "rows": r.rows,
            }
            for r in rows
        ]
    }
