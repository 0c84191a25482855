"""OAuth2 authorization-code flow (Green Button Connect My Data): the consent page, the
token endpoint and revocation.

1. The third party sends the customer to ``GET /oauth/authorize?response_type=code&
   client_id=...&redirect_uri=...&scope=...&state=...``.
2. The page shows who asks for what; the customer logs in with the login the utility gave
   them and allows (or denies). ``POST /oauth/authorize`` records the consent (the
   customer's meters at that moment, history from the scope) and sends the browser back to
   the redirect URI with a one-time ``code`` (or ``error=access_denied``).
3. The third party's server exchanges the code at ``POST /oauth/token`` with its client id
   and secret, once, within five minutes, for a Bearer access token.
4. ``POST /oauth/revoke`` (the third party) or ``DELETE /api/v1/consents/{id}`` (the
   customer) ends it: from then on the token reads nothing.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from openami.api.access import Denied, client_credentials
from openami.api.errors_doc import AUTHORIZE_ERRORS, TOKEN_ERRORS
from openami.api.scope import DEFAULT_SCOPE, Scope
from openami.api.state import ApiState
from openami.api.store import Client
from openami.errors import ConfigError

__all__ = ["router"]

router = APIRouter(tags=["oauth"])


def _state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


def _page(client_name: str, scope: Scope, fields: dict[str, str], error: str = "") -> str:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in fields.items()
    )
    years = scope.history.days / 365.0
    warning = f'<p class="error">{html.escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Share your energy data</title>
<style>body{{font-family:sans-serif;max-width:34em;margin:2em auto}}.error{{color:#b00}}
label{{display:block;margin:.6em 0}}</style></head>
<body><h1>Share your energy data</h1>
<p><strong>{html.escape(client_name)}</strong> asks to read your electricity use:</p>
<ul><li>30-minute interval reads (import and export) of the meters at your premises,</li>
<li>from {years:.1f} years back, for {scope.duration.days} days from now,</li>
<li>until you withdraw your consent (you can do that at any time).</li></ul>
{warning}
<form method="post" action="/oauth/authorize">{hidden}
<label>Customer number <input name="customer" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password"
 required></label>
<button name="decision" value="allow">Allow</button>
<button name="decision" value="deny">Deny</button>
</form></body></html>"""


def _check_request(state: ApiState, client_id: str, redirect_uri: str, scope: str) -> Scope:
    client = state.store.client(client_id)
    if client is None:
        raise Denied(400, f"unknown client_id {client_id!r}")
    if redirect_uri != client.redirect_uri:
        raise Denied(400, "redirect_uri is not the one registered for this client")
    try:
        return Scope.parse(scope)
    except ConfigError as exc:
        raise Denied(400, f"invalid scope: {exc}") from None


@router.get(
    "/oauth/authorize",
    response_class=HTMLResponse,
    summary="The consent page",
    responses=AUTHORIZE_ERRORS,
)
def authorize_page(
    request: Request,
    client_id: str,
    redirect_uri: str,
    response_type: str = "code",
    scope: str = DEFAULT_SCOPE,
    state: str = "",
) -> HTMLResponse:
    if response_type != "code":
        raise Denied(400, "only response_type=code is supported")
    api = _state(request)
    parsed = _check_request(api, client_id, redirect_uri, scope)
    client = api.store.client(client_id)
    assert client is not None
    fields = {"client_id": client_id, "redirect_uri": redirect_uri, "scope": scope, "state": state}
    return HTMLResponse(_page(client.name, parsed, fields))


@router.post(
    "/oauth/authorize",
    summary="The customer's decision on the consent page",
    response_model=None,
    responses=AUTHORIZE_ERRORS,
)
def authorize_decision(
    request: Request,
    client_id: Annotated[str, Form()],
    redirect_uri: Annotated[str, Form()],
    customer: Annotated[str, Form()],
    password: Annotated[str, Form()],
    decision: Annotated[str, Form()],
    scope: Annotated[str, Form()] = DEFAULT_SCOPE,
    state: Annotated[str, Form()] = "",
) -> HTMLResponse | RedirectResponse:
    api = _state(request)
    parsed = _check_request(api, client_id, redirect_uri, scope)
    client = api.store.client(client_id)
    assert client is not None
    back = {"state": state} if state else {}
    if decision != "allow":
        query = urlencode({"error": "access_denied", **back})
        return RedirectResponse(f"{redirect_uri}?{query}", status_code=303)
    if not api.store.check_login(customer, password):
        fields = {"client_id": client_id, "redirect_uri": redirect_uri, "scope": scope}
        wrong = "Wrong customer number or password."
        page = _page(client.name, parsed, {**fields, "state": state}, wrong)
        return HTMLResponse(page, status_code=401)
    now = datetime.now(UTC)
    meters = sorted(api.meters_of(customer, now))
    code = api.store.grant(
        client, customer, scope, meters, now - parsed.history, now + parsed.duration, now
    )
    return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, **back})}", status_code=303)


def _client(
    api: ApiState, request: Request, client_id: str | None, client_secret: str | None
) -> Client | None:
    """The client authenticated by HTTP Basic or by client_id/client_secret in the form."""
    pair = client_credentials(request.headers.get("authorization"), client_id, client_secret)
    return api.store.client(*pair) if pair is not None else None


_INVALID_CLIENT = {"error": "invalid_client"}


@router.post(
    "/oauth/token",
    summary="Exchange an authorization code or a refresh token for new tokens",
    responses=TOKEN_ERRORS,
)
def token(
    request: Request,
    grant_type: Annotated[str, Form(description="authorization_code or refresh_token")],
    code: Annotated[str | None, Form()] = None,
    redirect_uri: Annotated[str | None, Form()] = None,
    refresh_token: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
) -> JSONResponse:
    """RFC 6749: ``authorization_code`` (with ``code`` and ``redirect_uri``) after the
    consent page, ``refresh_token`` (with ``refresh_token``) later. Each answer carries a
    new refresh token; the one used is spent, and so is the previous access token."""
    api = _state(request)
    if grant_type not in ("authorization_code", "refresh_token"):
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
    by_code = grant_type == "authorization_code"
    if (by_code and not (code and redirect_uri)) or (not by_code and not refresh_token):
        return JSONResponse({"error": "invalid_request"}, status_code=400)
    client = _client(api, request, client_id, client_secret)
    if client is None:
        return JSONResponse(_INVALID_CLIENT, status_code=401)
    now = datetime.now(UTC)
    tokens = (
        api.store.exchange(client, code or "", redirect_uri or "", now)
        if by_code
        else api.store.refresh(client, refresh_token or "", now)
    )
    if tokens is None:
        return JSONResponse({"error": "invalid_grant"}, status_code=400)
    consent = tokens.consent
    return JSONResponse(
        {
            "access_token": tokens.access,
            "token_type": "Bearer",
            "expires_in": int((consent.expires_at - now).total_seconds()),
            "refresh_token": tokens.refresh,
            "scope": consent.scope,
            "resourceURI": f"/espi/1_1/resource/Batch/Subscription/{consent.consent_id}",
            "authorizationURI": f"/espi/1_1/resource/Authorization/{consent.consent_id}",
        },
        headers={"Cache-Control": "no-store"},
    )


@router.post(
    "/oauth/revoke", summary="Revoke an access token (the third party)", responses=TOKEN_ERRORS
)
def revoke(
    request: Request,
    token: Annotated[str, Form()],
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
) -> JSONResponse:
    api = _state(request)
    client = _client(api, request, client_id, client_secret)
    if client is None:
        return JSONResponse(_INVALID_CLIENT, status_code=401)
    consent = api.store.consent_of_token(token)
    if consent is not None and consent.client_id == client.client_id:
        api.store.revoke(consent.consent_id, datetime.now(UTC))
    return JSONResponse({"revoked": True})  # RFC 7009: the same answer for unknown tokens
