"""A third party's own registration (ESPI ApplicationInformation), and refresh tokens.

ApplicationInformation carries the client secret and the registration access token, so it
is served only to the application, authenticated with its own client credentials; the
document validates against the ESPI schema and xsdata's classes read it back. Refresh
tokens are spent by their use: a refreshed pair replaces the old one, and nothing is
refreshed for another third party or after the consent ends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient

from openami.api.scope import DEFAULT_SCOPE
from openami.api.state import ApiState
from openami.api.store import Client, Role, registration_token
from openami.protocols.espi import default_schema_path, validate

from ..protocols.espi.conftest import xsdata_reader  # noqa: F401 - a fixture
from ..protocols.espi.support import XsdataReader
from .test_consent import REDIRECT, a_customer, bearer

PATH = "/espi/1_1/resource/ApplicationInformation"


def _tokens(client: TestClient, api: ApiState, index: int) -> tuple[Client, str, dict[str, str]]:
    """A consent through the consent page; the token endpoint's whole answer."""
    customer, password, _ = a_customer(api, index)
    third, secret = api.store.register_client("Refresh Co", REDIRECT)
    query = {"client_id": third.client_id, "redirect_uri": REDIRECT, "scope": DEFAULT_SCOPE}
    decided = client.post(
        "/oauth/authorize",
        data={**query, "customer": customer, "password": password, "decision": "allow"},
    )
    code = parse_qs(urlparse(decided.headers["location"]).query)["code"][0]
    answer = client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=(third.client_id, secret),
    )
    assert answer.status_code == 200, answer.text
    return third, secret, answer.json()


def _refresh(
    client: TestClient, third: Client, secret: str, refresh: str
) -> tuple[int, dict[str, str]]:
    answer = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh},
        auth=(third.client_id, secret),
    )
    return answer.status_code, answer.json()


def test_the_application_reads_its_own_registration(
    client: TestClient,
    api: ApiState,
    xsdata_reader: XsdataReader,  # noqa: F811 - the imported fixture
) -> None:
    if not default_schema_path().is_file():
        pytest.skip(f"the ESPI schema is not at {default_schema_path()} (../shared/peers)")
    third, secret = api.store.register_client("Solar Co", REDIRECT)
    answer = client.get(f"{PATH}/{third.client_id}", auth=(third.client_id, secret))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/atom+xml")
    assert answer.headers["cache-control"] == "no-store"
    validate(answer.content)
    (entry,) = xsdata_reader.entries(answer.content)
    body = xsdata_reader.body(entry)
    assert isinstance(body, xsdata_reader.espi.ApplicationInformation)
    assert (body.client_id, body.client_name, body.client_secret) == (
        third.client_id,
        "Solar Co",
        secret,
    )
    assert body.registration_access_token == registration_token(third.client_id, secret)
    assert tuple(body.redirect_uri) == (REDIRECT,)
    assert tuple(body.scope) == (DEFAULT_SCOPE,)
    assert [g.value for g in body.grant_types] == ["authorization_code", "refresh_token"]
    assert body.authorization_server_token_endpoint == "http://testserver/oauth/token"
    assert body.registration_client_uri == f"http://testserver{PATH}/{third.client_id}"
    assert third.created_at is not None
    assert body.client_id_issued_at == int(third.created_at.timestamp())
    again = client.get(f"{PATH}/{third.client_id}", auth=(third.client_id, secret))
    (entry,) = xsdata_reader.entries(again.content)
    assert xsdata_reader.body(entry).registration_access_token == body.registration_access_token
    who = [a.who for a in api.store.accesses() if a.what.startswith(f"GET {PATH}")]
    assert who == [f"client:{third.client_id}"] * 2


def test_no_one_else_sees_an_application_s_registration(client: TestClient, api: ApiState) -> None:
    third, secret = api.store.register_client("Solar Co", REDIRECT)
    other, other_secret = api.store.register_client("Other Co", REDIRECT)
    mine = f"{PATH}/{third.client_id}"
    anonymous = client.get(mine)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    assert client.get(mine, auth=(third.client_id, "cs_wrong")).status_code == 401
    assert client.get(mine, auth=(other.client_id, other_secret)).status_code == 404
    assert client.get(f"{PATH}/cl_nonexistent", auth=(third.client_id, secret)).status_code == 404
    customer, password, _ = a_customer(api, 3)
    assert client.get(mine, auth=(customer, password)).status_code == 401
    _, _, tokens = _tokens(client, api, 4)
    assert client.get(mine, headers=bearer(tokens["access_token"])).status_code == 401
    admin = api.store.create_key("ops", Role.ADMINISTRATOR)
    assert client.get(mine, headers={"X-API-Key": admin}).status_code == 401


def test_a_refresh_gives_new_tokens_and_spends_the_old_ones(
    client: TestClient, api: ApiState
) -> None:
    third, secret, first = _tokens(client, api, 5)
    assert first["refresh_token"].startswith("rt_")
    assert client.get("/api/v1/meters", headers=bearer(first["access_token"])).status_code == 200
    status, second = _refresh(client, third, secret, first["refresh_token"])
    assert status == 200, second
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["scope"] == first["scope"] and second["resourceURI"] == first["resourceURI"]
    assert client.get("/api/v1/meters", headers=bearer(second["access_token"])).status_code == 200
    # the old access token and the used refresh token are spent
    assert client.get("/api/v1/meters", headers=bearer(first["access_token"])).status_code == 401
    assert _refresh(client, third, secret, first["refresh_token"]) == (
        400,
        {"error": "invalid_grant"},
    )
    status, third_pair = _refresh(client, third, secret, second["refresh_token"])
    assert status == 200 and third_pair["refresh_token"] != second["refresh_token"]


def test_no_refresh_for_another_party_a_wrong_secret_or_an_ended_consent(
    client: TestClient, api: ApiState
) -> None:
    third, secret, tokens = _tokens(client, api, 6)
    other, other_secret = api.store.register_client("Other Co", REDIRECT)
    refresh = tokens["refresh_token"]
    assert _refresh(client, other, other_secret, refresh) == (400, {"error": "invalid_grant"})
    assert _refresh(client, third, "cs_wrong", refresh) == (401, {"error": "invalid_client"})
    missing = client.post(
        "/oauth/token", data={"grant_type": "refresh_token"}, auth=(third.client_id, secret)
    )
    assert missing.status_code == 400 and missing.json() == {"error": "invalid_request"}
    # the other party's attempt did not spend it: the owner still can, once
    status, fresh = _refresh(client, third, secret, refresh)
    assert status == 200
    (consent,) = [c for c in api.store.consents() if c.client_id == third.client_id]
    assert api.store.revoke(consent.consent_id, datetime.now(UTC))
    assert _refresh(client, third, secret, fresh["refresh_token"]) == (
        400,
        {"error": "invalid_grant"},
    )


def test_no_refresh_after_the_consent_expires(api: ApiState) -> None:
    customer, _password, mine = a_customer(api, 7)
    third, _ = api.store.register_client("Late Co", REDIRECT)
    now = datetime.now(UTC)
    code = api.store.grant(
        third,
        customer,
        DEFAULT_SCOPE,
        mine,
        now - timedelta(days=400),
        now + timedelta(seconds=30),
        now - timedelta(seconds=10),
    )
    tokens = api.store.exchange(third, code, REDIRECT, now - timedelta(seconds=9))
    assert tokens is not None
    assert api.store.refresh(third, tokens.refresh, now + timedelta(minutes=1)) is None
