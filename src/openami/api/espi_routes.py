"""Green Button under the standard ESPI resource paths, so existing Green Button clients
work: Connect My Data (a third party's token, ``Batch/Subscription/{id}``, the id being the
consent the token was issued under) and Download My Data (a customer's own login,
``Batch/RetailCustomer/{id}/UsagePoint``), plus the ``Authorization`` entry of a consent."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from openami.api.access import Denied
from openami.api.data_routes import PROTECTED, Who, _span, audit, state_of
from openami.api.errors_doc import DATA_ERRORS
from openami.api.greenbutton import (
    LOCAL_TIME,
    READING_TYPES,
    meter_readings,
    usage_document,
    usage_point,
)
from openami.protocols.espi import (
    AuthorizationInfo,
    DateTimeInterval,
    MeterReadingInfo,
    authorization_entry,
    entry_document,
)

__all__ = ["router"]

router = APIRouter(prefix="/espi/1_1/resource", tags=["green button"], responses=DATA_ERRORS)
ATOM = "application/atom+xml"
JST = timezone(timedelta(hours=9))  # interval blocks are Japan-time days
_DOC: dict[int | str, dict[str, Any]] = {
    200: {"description": "An Atom document (ESPI 3.3)", "content": {ATOM: {}}}
}
Since = Annotated[str | None, Query(alias="published-min", description="ISO 8601 start")]
Until = Annotated[str | None, Query(alias="published-max", description="ISO 8601 end")]


def _feed(
    request: Request,
    who: Who,
    meters: list[int],
    subscription: str,
    start: str | None,
    end: str | None,
) -> Response:
    begin, stop = _span(who, start or (datetime.now(UTC) - timedelta(days=399)).isoformat(), end)
    base = str(request.base_url).rstrip("/")
    document = usage_document(state_of(request).data, meters, begin, stop, subscription, base)
    audit(request, who, 200, len(meters))
    return Response(document, media_type=ATOM)


@router.get(
    "/Batch/Subscription/{subscription_id}",
    responses=_DOC,
    openapi_extra={"security": PROTECTED},
    response_class=Response,
)
def batch_subscription(
    request: Request, who: Who, subscription_id: str, since: Since = None, until: Until = None
) -> Response:
    """Connect My Data: everything the consent behind the token covers, as one feed."""
    if who.consent is None or who.consent.consent_id != subscription_id:
        raise Denied(404, f"no subscription {subscription_id} for this token")
    return _feed(request, who, sorted(who.consent.meters), subscription_id, since, until)


@router.get(
    "/Batch/RetailCustomer/{customer_id}/UsagePoint",
    responses=_DOC,
    openapi_extra={"security": PROTECTED},
    response_class=Response,
)
def download_my_data(
    request: Request, who: Who, customer_id: str, since: Since = None, until: Until = None
) -> Response:
    """Download My Data: a customer's own usage, with their own login."""
    if who.kind != "customer" or who.customer != customer_id:
        raise Denied(404, f"no retail customer {customer_id} for this login")
    meters = sorted(who.meters or ())
    return _feed(request, who, meters, f"dmd-{customer_id}", since, until)


@router.get(
    "/Authorization/{authorization_id}",
    responses=_DOC,
    openapi_extra={"security": PROTECTED},
    response_class=Response,
)
def authorization(request: Request, who: Who, authorization_id: str) -> Response:
    """The consent behind the token, as an ESPI Authorization entry."""
    consent = who.consent
    if consent is None or consent.consent_id != authorization_id:
        raise Denied(404, f"no authorization {authorization_id} for this token")
    base = str(request.base_url).rstrip("/")
    now = datetime.now(UTC)
    start = int(consent.created_at.timestamp())
    entry = AuthorizationInfo(
        id=consent.consent_id,
        authorized_period=DateTimeInterval(start, int(consent.expires_at.timestamp()) - start),
        published_period=DateTimeInterval(
            int(consent.data_from.timestamp()), start - int(consent.data_from.timestamp())
        ),
        status=1 if consent.active(now) else 0,
        expires_at=int(consent.expires_at.timestamp()),
        scope=consent.scope,
        resource_uri=f"{base}/espi/1_1/resource/Batch/Subscription/{consent.consent_id}",
        authorization_uri=f"{base}/espi/1_1/resource/Authorization/{consent.consent_id}",
        customer_resource_uri=f"{base}/espi/1_1/resource/Batch/Subscription/{consent.consent_id}",
        application_information_id=consent.client_id,
    )
    audit(request, who, 200, 1)
    return Response(
        authorization_entry(entry, published=now, updated=now, base_url=base), media_type=ATOM
    )


# --- one resource at a time, under the standard paths ----------------------------------------


def _entry(request: Request, who: Who, resource: Any, **parents: str) -> Response:
    base = str(request.base_url).rstrip("/")
    now = datetime.now(UTC)
    document = entry_document(resource, published=now, updated=now, base_url=base, **parents)
    audit(request, who, 200, 1)
    return Response(document, media_type=ATOM)


def _consented_meter(who: Who, subscription_id: str, usage_point_id: str) -> int:
    """The meter behind a usage point of the token's subscription, or 404."""
    consent = who.consent
    if consent is None or consent.consent_id != subscription_id:
        raise Denied(404, f"no subscription {subscription_id} for this token")
    meter = int(usage_point_id) if usage_point_id.isdigit() else -1
    if meter not in consent.meters:
        raise Denied(404, f"no usage point {usage_point_id} in subscription {subscription_id}")
    return meter


_ONE: dict[str, Any] = {
    "responses": _DOC,
    "openapi_extra": {"security": PROTECTED},
    "response_class": Response,
}


@router.get("/Subscription/{subscription_id}/UsagePoint/{usage_point_id}", **_ONE)
def one_usage_point(
    request: Request, who: Who, subscription_id: str, usage_point_id: str
) -> Response:
    """A usage point of the subscription, as an Atom entry."""
    meter = _consented_meter(who, subscription_id, usage_point_id)
    return _entry(
        request, who, usage_point(meter), subscription_id=subscription_id,
        local_time_id=LOCAL_TIME.id,
    )  # fmt: skip


@router.get(
    "/Subscription/{subscription_id}/UsagePoint/{usage_point_id}/MeterReading/{reading_id}",
    **_ONE,
)
def one_meter_reading(
    request: Request, who: Who, subscription_id: str, usage_point_id: str, reading_id: str
) -> Response:
    """A meter reading (import or export) of a usage point, as an Atom entry."""
    meter = _consented_meter(who, subscription_id, usage_point_id)
    found = {f"{meter}-{name}": kind for name, kind in READING_TYPES.items()}
    if reading_id not in found:
        raise Denied(404, f"no meter reading {reading_id} at usage point {usage_point_id}")
    name = reading_id.rsplit("-", 1)[1]
    reading = MeterReadingInfo(reading_id, f"Meter {meter} {name}", found[reading_id])
    return _entry(
        request, who, reading, subscription_id=subscription_id, usage_point_id=usage_point_id
    )


@router.get(
    "/Subscription/{subscription_id}/UsagePoint/{usage_point_id}/MeterReading/{reading_id}"
    "/IntervalBlock/{block_id}",
    **_ONE,
)
def one_interval_block(
    request: Request,
    who: Who,
    subscription_id: str,
    usage_point_id: str,
    reading_id: str,
    block_id: str,
) -> Response:
    """One day's interval block (its id is the Japan-time date, YYYY-MM-DD)."""
    meter = _consented_meter(who, subscription_id, usage_point_id)
    try:
        day = date.fromisoformat(block_id)
    except ValueError:
        raise Denied(404, f"no interval block {block_id}: ids are dates, YYYY-MM-DD") from None
    start = datetime(day.year, day.month, day.day, tzinfo=JST)
    begin, stop = _span(who, start.isoformat(), (start + timedelta(days=1)).isoformat())
    readings = meter_readings(state_of(request).data, meter, begin, stop)
    block = next(
        (b for r in readings if r.id == reading_id for b in r.blocks if b.id == block_id), None
    )
    if block is None:
        raise Denied(404, f"no interval block {block_id} in meter reading {reading_id}")
    return _entry(
        request, who, block, subscription_id=subscription_id, usage_point_id=usage_point_id,
        meter_reading_id=reading_id,
    )  # fmt: skip


@router.get("/ReadingType/{reading_type_id}", **_ONE)
def one_reading_type(request: Request, who: Who, reading_type_id: str) -> Response:
    """A reading type: 30-minute energy in Wh, import (forward) or export (reverse)."""
    found = {kind.id: kind for kind in READING_TYPES.values()}
    if reading_type_id not in found:
        raise Denied(404, f"no reading type {reading_type_id}")
    return _entry(request, who, found[reading_type_id])


@router.get("/LocalTimeParameters/{local_time_id}", **_ONE)
def one_local_time(request: Request, who: Who, local_time_id: str) -> Response:
    """Japan time: UTC+9, no daylight saving time."""
    if local_time_id != LOCAL_TIME.id:
        raise Denied(404, f"no local time parameters {local_time_id}")
    return _entry(request, who, LOCAL_TIME)
