"""Webhook subscriptions through Route C: a third party (with its consent's token) or an
operator asks to be told at its own URL when reads or events of its meters arrive, lists
and deletes its subscriptions, and reads each one's delivery log. An operator can start a
scan of the MDMS's stores for what is new at once, without waiting for the service's own.

A third party's subscription belongs to the consent behind its token: it names only
consented meters (by default all of them), is seen only with that consent's token, and
ends with the consent. Nothing here posts to a callback URL: deliveries are made by the
service's worker (``webhooks.py``)."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from openami.api.access import Caller, Denied
from openami.api.data_routes import Who, audit, state_of
from openami.api.errors_doc import DATA_ERRORS, Refusal
from openami.api.store import Role
from openami.api.subscriptions import Delivery, Subscription, SubscriptionLimit
from openami.errors import ConfigError

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["subscriptions"], responses=DATA_ERRORS)
THIRD_PARTIES_AND_OPERATORS: list[dict[str, list[str]]] = [{"apiKey": []}, {"oauth2": []}]
MeterId = Annotated[int, Field(ge=1, le=2**40 - 1)]
SubscriptionId = Annotated[str, Path(pattern="^sub_[0-9a-f]{24}$")]
Time = Annotated[str, Field(description="ISO 8601, UTC", examples=["2026-08-05T00:10:02+00:00"])]


class EventKind(StrEnum):
    reads = "reads"  # a day of validated reads of a subscribed meter is available (or changed)
    events = "events"  # what the meters reported: power down and up, tamper, ...


class SubscriptionRequest(BaseModel):
    url: str = Field(
        max_length=512,
        description="Where to POST: https://, or http:// on loopback only.",
        examples=["https://solar.example/hooks/openami"],
    )
    events: list[EventKind] = Field(min_length=1, max_length=2)
    meters: list[MeterId] | None = Field(
        default=None,
        min_length=1,
        max_length=10_000,
        description="The meters to hear of; default: every meter the caller may read (a "
        "third party: every consented meter).",
    )


class SubscriptionOut(BaseModel):
    subscription_id: str
    url: str
    events: list[str]
    meters: list[int] | None = Field(
        description="null: every meter the owner may read (a third party: every consented one)"
    )
    owner: str
    consent_id: str | None
    created_at: Time
    active: bool = Field(description="false once deleted, or once its consent has ended")
    ended_at: Time | None


class NewSubscription(SubscriptionOut):
    secret: str = Field(
        description="The signing secret, shown this once: X-OpenAMI-Signature is "
        'sha256=HMAC-SHA256(secret, "<X-OpenAMI-Timestamp>.<body>")'
    )


class SubscriptionList(BaseModel):
    subscriptions: list[SubscriptionOut]


class Ended(BaseModel):
    subscription_id: str
    active: bool
    ended: bool = Field(description="whether this call ended it (false: it had ended before)")


class DeliveryOut(BaseModel):
    delivery_id: str
    type: str
    status: str = Field(description="pending, delivered or failed")
    attempts: int
    next_attempt_at: Time | None = Field(description="while pending")
    last_status: int | None = Field(description="the receiver's last HTTP status")
    last_error: str | None
    created_at: Time
    delivered_at: Time | None
    payload: dict[str, Any] = Field(description="the JSON body POSTed, the same each attempt")


class DeliveryLog(BaseModel):
    subscription_id: str
    deliveries: list[DeliveryOut]


class ScanOut(BaseModel):
    files: dict[str, int] = Field(description="new files of the stores, per source")
    deliveries: int = Field(description="deliveries enqueued")
    errors: list[str] = Field(description="files that could not be read, tried again later")


def _may_subscribe(who: Caller) -> None:
    if who.kind == "client":
        return
    if who.kind != "operator":
        raise Denied(403, "subscriptions are for third parties (with a consent) and operators")
    who.require(Role.READ_ONLY)


def _mine(who: Caller, found: Subscription) -> bool:
    if who.kind == "client":
        return who.consent is not None and found.consent_id == who.consent.consent_id
    admin = who.role is not None and who.role.allows(Role.ADMINISTRATOR)
    return who.kind == "operator" and (found.owner == who.who or admin)


def _owned(request: Request, who: Caller, subscription_id: str) -> Subscription:
    _may_subscribe(who)
    found = state_of(request).webhooks.subscriptions(subscription_id=subscription_id)
    if not found or not _mine(who, found[0]):
        raise Denied(404, f"no subscription {subscription_id} of this caller")
    return found[0]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _plain(found: Subscription) -> dict[str, Any]:
    return {
        "subscription_id": found.subscription_id,
        "url": found.url,
        "events": list(found.events),
        "meters": None if found.meters is None else list(found.meters),
        "owner": found.owner,
        "consent_id": found.consent_id,
        "created_at": found.created_at.isoformat(),
        "active": found.active,
        "ended_at": _iso(found.ended_at),
    }


def _delivery(found: Delivery) -> DeliveryOut:
    return DeliveryOut(
        delivery_id=found.delivery_id,
        type=found.kind,
        status=found.status,
        attempts=found.attempts,
        next_attempt_at=_iso(found.next_attempt_at) if found.status == "pending" else None,
        last_status=found.last_status,
        last_error=found.last_error,
        created_at=found.created_at.isoformat(),
        delivered_at=_iso(found.delivered_at),
        payload=json.loads(found.payload),
    )


@router.post(
    "/subscriptions",
    status_code=201,
    openapi_extra={"security": THIRD_PARTIES_AND_OPERATORS},
    responses={
        409: {
            "model": Refusal,
            "description": "The caller already has 20 active subscriptions.",
            "content": {"application/json": {}},
        }
    },
)
def subscribe(request: Request, who: Who, wanted: SubscriptionRequest) -> NewSubscription:
    """Subscribe a callback URL to new reads and/or events of some meters (third parties:
    consented meters only). The answer carries the signing secret, shown this once."""
    _may_subscribe(who)
    if wanted.meters is not None:
        for meter in wanted.meters:
            who.may_read(meter)
    try:
        made, secret = state_of(request).webhooks.subscribe(
            owner=who.who,
            owner_kind=who.kind,
            url=wanted.url,
            events=[e.value for e in wanted.events],
            meters=wanted.meters,
            consent_id=who.consent.consent_id if who.consent is not None else None,
            customer=who.customer,
        )
    except SubscriptionLimit as exc:
        raise Denied(409, str(exc)) from None
    except ConfigError as exc:
        raise Denied(400, str(exc)) from None
    audit(request, who, 201, 1)
    return NewSubscription(**_plain(made), secret=secret)


@router.get("/subscriptions", openapi_extra={"security": THIRD_PARTIES_AND_OPERATORS})
def list_subscriptions(request: Request, who: Who) -> SubscriptionList:
    """The caller's subscriptions (a third party: those of its token's consent; an
    administrator: every one), oldest first, without their secrets."""
    _may_subscribe(who)
    webhooks = state_of(request).webhooks
    if who.kind == "client":  # a client is identified by its consent
        found = webhooks.subscriptions(consent_id=who.consent.consent_id if who.consent else "")
    elif who.role is not None and who.role.allows(Role.ADMINISTRATOR):
        found = webhooks.subscriptions()
    else:
        found = webhooks.subscriptions(owner=who.who)
    audit(request, who, 200, len(found))
    return SubscriptionList(subscriptions=[SubscriptionOut(**_plain(s)) for s in found])


@router.delete(
    "/subscriptions/{subscription_id}",
    openapi_extra={"security": THIRD_PARTIES_AND_OPERATORS},
)
def delete_subscription(request: Request, who: Who, subscription_id: SubscriptionId) -> Ended:
    """End a subscription: nothing more is sent for it, pending deliveries included. Its
    delivery log stays."""
    _owned(request, who, subscription_id)
    done = state_of(request).webhooks.end(subscription_id)
    audit(request, who, 200, int(done))
    return Ended(subscription_id=subscription_id, active=False, ended=done)


@router.get(
    "/subscriptions/{subscription_id}/deliveries",
    openapi_extra={"security": THIRD_PARTIES_AND_OPERATORS},
)
def deliveries(
    request: Request,
    who: Who,
    subscription_id: SubscriptionId,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
) -> DeliveryLog:
    """A subscription's delivery log, newest first: each delivery's id, status, attempts,
    the receiver's last answer, and the body that was (or is to be) POSTed."""
    _owned(request, who, subscription_id)
    found = state_of(request).webhooks.deliveries(subscription_id, limit)
    audit(request, who, 200, len(found))
    return DeliveryLog(subscription_id=subscription_id, deliveries=[_delivery(d) for d in found])


@router.post("/notifications/scan", openapi_extra={"security": [{"apiKey": []}]})
def scan(request: Request, who: Who) -> ScanOut:
    """Look now for what the MDMS wrote since the last scan (validated reads, meter
    events) and enqueue the deliveries it means (operator role). The service also scans
    on its own, every few seconds, when started with ``openami api serve``."""
    who.require(Role.OPERATOR)
    api = state_of(request)
    report = api.webhooks.scan(api.data.validated.reads_dir, api.data.events.events_dir)
    audit(request, who, 200, report.deliveries)
    return ScanOut(files=report.files, deliveries=report.deliveries, errors=list(report.errors))
