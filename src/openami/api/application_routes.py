"""Green Button ApplicationInformation: a registered third party's own registration.

ESPI's ApplicationInformation carries the application's client secret and registration
access token, so it is served to that application alone, authenticated with its client
credentials (HTTP Basic, ``client_secret_basic``, as at the token endpoint). The service
keeps only digests of secrets: the secret in the document is the one the request has just
proved, and the registration access token is derived from it (``store.registration_token``),
so nothing is stored in clear and nothing is shown that the caller did not already hold.

What the registration does not record is filled from what the service does:

- ``third_party_notify_uri``: the application's redirect URI. openami announces new data
  through signed webhooks registered per subscription (``/api/v1/subscriptions``), not by
  posting ESPI notifications to this address;
- ``software_id`` and ``software_version``: the client's name and ``unspecified`` (a
  registration does not ask for them);
- ``data_custodian_bulk_request_uri``: the JSON bulk feed (``/api/v1/interval-reads``);
  ESPI's ``Batch/Bulk`` is not served;
- ``client_secret_expires_at``: 0, a secret that does not expire (RFC 7591).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response

from openami.api.access import Caller, Denied, client_credentials
from openami.api.data_routes import audit, state_of
from openami.api.scope import DEFAULT_SCOPE
from openami.api.store import Client, registration_token
from openami.protocols.espi import (
    ApplicationInformationInfo,
    DataCustodianApplicationStatus,
    application_information_entry,
)

__all__ = ["DATA_CUSTODIAN_ID", "application_information", "router"]

router = APIRouter(prefix="/espi/1_1/resource", tags=["green button"])
DATA_CUSTODIAN_ID = "openami"
ATOM = "application/atom+xml"
_DOC: dict[int | str, dict[str, Any]] = {
    200: {"description": "The ApplicationInformation entry (ESPI 3.3)", "content": {ATOM: {}}},
    401: {"description": "No client credentials, or wrong ones (WWW-Authenticate: Basic)."},
    404: {"description": "The id is not the authenticated client's."},
    429: {"description": "Rate limit or daily quota reached; see Retry-After."},
}


def application_information(
    client: Client, secret: str, base: str, now: datetime
) -> ApplicationInformationInfo:
    """The ESPI view of ``client``'s registration, as served at ``base``."""
    resource = f"{base}/espi/1_1/resource"
    issued = client.created_at or now
    return ApplicationInformationInfo(
        id=client.client_id,
        data_custodian_id=DATA_CUSTODIAN_ID,
        data_custodian_application_status=DataCustodianApplicationStatus.PRODUCTION,
        third_party_notify_uri=client.redirect_uri,
        authorization_server_authorization_endpoint=f"{base}/oauth/authorize",
        authorization_server_token_endpoint=f"{base}/oauth/token",
        data_custodian_bulk_request_uri=f"{base}/api/v1/interval-reads",
        data_custodian_resource_endpoint=resource,
        client_secret=secret,
        client_name=client.name,
        redirect_uris=(client.redirect_uri,),
        client_id=client.client_id,
        software_id=client.name,
        software_version="unspecified",
        client_id_issued_at=int(issued.timestamp()),
        client_secret_expires_at=0,
        scopes=(DEFAULT_SCOPE,),
        registration_client_uri=f"{resource}/ApplicationInformation/{client.client_id}",
        registration_access_token=registration_token(client.client_id, secret),
        grant_types=("authorization_code", "refresh_token"),
        authorization_server_uri=base,
    )


@router.get(
    "/ApplicationInformation/{application_id}",
    responses=_DOC,
    openapi_extra={"security": [{"clientCredentials": []}]},
    response_class=Response,
)
def one_application(
    request: Request,
    application_id: str,
    authorization: Annotated[
        str | None, Header(description="The application's client_id:client_secret, Basic.")
    ] = None,
) -> Response:
    """The calling application's own registration, with its secret and registration token."""
    api = state_of(request)
    pair = client_credentials(authorization)
    client = api.store.client(*pair) if pair is not None else None
    if client is None:
        raise Denied(401, "give the application's client_id and client_secret (HTTP Basic)")
    who = Caller("client", client.client_id)
    request.state.caller = who  # a refusal from here on is audited under this name
    api.limiter.take(who.who)
    if client.client_id != application_id:
        # the same answer whether or not the id exists: registrations do not leak
        raise Denied(404, f"no application {application_id} for these credentials")
    assert pair is not None  # the client was found with it
    now = datetime.now(UTC)
    base = str(request.base_url).rstrip("/")
    app = application_information(client, pair[1], base, now)
    issued = client.created_at or now
    document = application_information_entry(app, published=issued, updated=now, base_url=base)
    audit(request, who, 200, 1)
    return Response(document, media_type=ATOM, headers={"Cache-Control": "no-store"})
