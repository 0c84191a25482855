"""Green Button under the standard ESPI resource paths, so existing Green Button clients
work: Connect My Data (a third party's token, ``Batch/Subscription/{id}``, the id being the
consent the token was issued under) and Download My Data (a customer's own login,
``Batch/RetailCustomer/{id}/UsagePoint``), plus the ``Authorization`` entry of a consent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from openami.api.access import Denied
from openami.api.data_routes import PROTECTED, Who, _span, audit, state_of
from openami.api.errors_doc import DATA_ERRORS
from openami.api.greenbutton import usage_document
from openami.protocols.espi import AuthorizationInfo, DateTimeInterval, authorization_entry

__all__ = ["router"]

router = APIRouter(prefix="/espi/1_1/resource", tags=["green button"], responses=DATA_ERRORS)
ATOM = "application/atom+xml"
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
    )
    audit(request, who, 200, 1)
    return Response(
        authorization_entry(entry, published=now, updated=now, base_url=base), media_type=ATOM
    )
