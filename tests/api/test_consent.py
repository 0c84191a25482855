"""The consent flow end to end through the HTTP service, and what a consent lets a third
party see: nothing outside the consented meters and time, nothing after revocation or
expiry, and one third party's codes and tokens useless to another."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

from fastapi.testclient import TestClient

from openami.api.scope import DEFAULT_SCOPE
from openami.api.state import ApiState
from openami.api.store import Client, Role

REDIRECT = "https://solar.example/cb"
SPAN = {"start": "2026-08-03T00:00+09:00", "end": "2026-08-05T00:00+09:00"}


def a_customer(api: ApiState, index: int = 0) -> tuple[str, str, list[int]]:
    row = api.data.customers(datetime.now(UTC))[index]
    return row.customer, api.store.set_login(row.customer), list(row.meters)


def consent_flow(
    client: TestClient, api: ApiState, customer: str, password: str, scope: str = DEFAULT_SCOPE
) -> tuple[Client, str, str]:
    """A third party is registered, the customer allows it on the consent page, and the
    third party exchanges the code: (client, secret, access token)."""
    third, secret = api.store.register_client("Solar Co", REDIRECT)
    query = {"client_id": third.client_id, "redirect_uri": REDIRECT, "scope": scope, "state": "s1"}
    page = client.get("/oauth/authorize", params={"response_type": "code", **query})
    assert page.status_code == 200 and "Solar Co" in page.text
    decided = client.post(
        "/oauth/authorize",
        data={**query, "customer": customer, "password": password, "decision": "allow"},
    )
    assert decided.status_code == 303
    back = urlparse(decided.headers["location"])
    assert back.geturl().startswith(REDIRECT)
    got = parse_qs(back.query)
    assert got["state"] == ["s1"]
    token = client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": got["code"][0], "redirect_uri": REDIRECT},
        auth=(third.client_id, secret),
    )
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["token_type"] == "Bearer" and body["scope"] == scope
    return third, secret, body["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_third_party_reads_exactly_the_consented_meters(
    client: TestClient, api: ApiState
) -> None:
    customer, password, mine = a_customer(api, 3)
    _, _, token = consent_flow(client, api, customer, password)
    listed = client.get("/api/v1/meters", headers=bearer(token)).json()["meters"]
    assert [m["meter_id"] for m in listed] == mine
    reads = client.get(
        f"/api/v1/meters/{mine[0]}/interval-reads",
        params={**SPAN, "page_size": 10_000},
        headers=bearer(token),
    )
    assert reads.status_code == 200
    assert reads.json()["total"] == 2 * 96  # two channels, two days of 30-minute reads
    # every other meter of the fleet: refused, and refused the same way as a meter that
    # does not exist (nothing tells a third party which meters exist)
    others = [m for m in range(1, 201) if m not in mine] + [10_000]
    refused = [
        client.get(f"/api/v1/meters/{m}/interval-reads", params=SPAN, headers=bearer(token))
        for m in others
    ]
    assert {r.status_code for r in refused} == {404}
    details = {
        r.json()["detail"].replace(str(m), "N") for r, m in zip(refused, others, strict=True)
    }
    assert len(details) == 1


def test_nothing_before_the_consented_history(client: TestClient, api: ApiState) -> None:
    customer, password, mine = a_customer(api, 4)
    # history of one day before the consent (now, December): the August reads are out
    scope = "FB=1_3_4_5_13_14;IntervalDuration=1800;BlockDuration=daily;HistoryLength=86400"
    _, _, token = consent_flow(client, api, customer, password, scope)
    reads = client.get(
        f"/api/v1/meters/{mine[0]}/interval-reads", params=SPAN, headers=bearer(token)
    )
    assert reads.status_code == 400  # the whole span lies before what the consent allows
    recent = client.get(f"/api/v1/meters/{mine[0]}/interval-reads", headers=bearer(token))
    assert recent.status_code == 200 and recent.json()["total"] == 0


def test_revocation_by_the_customer_ends_every_read(client: TestClient, api: ApiState) -> None:
    customer, password, mine = a_customer(api, 5)
    _, _, token = consent_flow(client, api, customer, password)
    assert client.get("/api/v1/meters", headers=bearer(token)).status_code == 200
    own = client.get("/api/v1/consents", auth=(customer, password)).json()["consents"]
    assert len(own) == 1 and own[0]["active"]
    gone = client.delete(f"/api/v1/consents/{own[0]['consent_id']}", auth=(customer, password))
    assert gone.json()["revoked"] is True
    paths = [
        "/api/v1/meters",
        f"/api/v1/meters/{mine[0]}/interval-reads",
        f"/api/v1/meters/{mine[0]}/register-reads",
        f"/api/v1/meters/{mine[0]}/events",
    ]
    answers = [client.get(p, params=SPAN, headers=bearer(token)) for p in paths]
    assert {a.status_code for a in answers} == {401}
    assert all("reads" not in a.json() and "meters" not in a.json() for a in answers)


def test_revocation_by_the_third_party(client: TestClient, api: ApiState) -> None:
    customer, password, _ = a_customer(api, 6)
    third, secret, token = consent_flow(client, api, customer, password)
    done = client.post("/oauth/revoke", data={"token": token}, auth=(third.client_id, secret))
    assert done.status_code == 200
    assert client.get("/api/v1/meters", headers=bearer(token)).status_code == 401


def test_an_expired_consent_reads_nothing(client: TestClient, api: ApiState) -> None:
    customer, _password, mine = a_customer(api, 7)
    third, _ = api.store.register_client("Late Co", REDIRECT)
    now = datetime.now(UTC)
    code = api.store.grant(
        third,
        customer,
        DEFAULT_SCOPE,
        mine,
        now - timedelta(days=400),
        now - timedelta(seconds=1),
        now - timedelta(days=1),
    )
    exchanged = api.store.exchange(
        third, code, REDIRECT, now - timedelta(days=1) + timedelta(minutes=1)
    )
    assert exchanged is not None
    token = exchanged.access
    answer = client.get("/api/v1/meters", headers=bearer(token))
    assert answer.status_code == 401 and "expired" in answer.json()["detail"]


def test_one_third_party_cannot_use_another_s_code_or_revoke_its_token(
    client: TestClient, api: ApiState
) -> None:
    customer, password, _ = a_customer(api, 8)
    first, first_secret = api.store.register_client("First", REDIRECT)
    second, second_secret = api.store.register_client("Second", REDIRECT)
    query = {"client_id": first.client_id, "redirect_uri": REDIRECT, "scope": DEFAULT_SCOPE}
    decided = client.post(
        "/oauth/authorize",
        data={**query, "customer": customer, "password": password, "decision": "allow"},
    )
    code = parse_qs(urlparse(decided.headers["location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    stolen = client.post("/oauth/token", data=form, auth=(second.client_id, second_secret))
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    token = client.post("/oauth/token", data=form, auth=(first.client_id, first_secret)).json()
    again = client.post("/oauth/token", data=form, auth=(first.client_id, first_secret))
    assert again.status_code == 400  # a code is spent once
    client.post(
        "/oauth/revoke",
        data={"token": token["access_token"]},
        auth=(second.client_id, second_secret),
    )
    assert client.get("/api/v1/meters", headers=bearer(token["access_token"])).status_code == 200
    wrong = client.post("/oauth/token", data=form, auth=(first.client_id, "not-the-secret"))
    assert wrong.status_code == 401


def test_a_wrong_login_or_a_denial_gives_no_code(client: TestClient, api: ApiState) -> None:
    customer, _password, _ = a_customer(api, 9)
    third, _ = api.store.register_client("Solar Co", REDIRECT)
    query = {"client_id": third.client_id, "redirect_uri": REDIRECT, "scope": DEFAULT_SCOPE}
    wrong = client.post(
        "/oauth/authorize",
        data={**query, "customer": customer, "password": "x", "decision": "allow"},
    )
    assert wrong.status_code == 401 and "Wrong customer number" in wrong.text
    denied = client.post(
        "/oauth/authorize",
        data={**query, "customer": customer, "password": "x", "decision": "deny"},
    )
    assert parse_qs(urlparse(denied.headers["location"]).query) == {"error": ["access_denied"]}
    assert api.store.consents(customer) == []
    elsewhere = client.get(
        "/oauth/authorize", params={**query, "redirect_uri": "https://evil.example/cb"}
    )
    assert elsewhere.status_code == 400


def test_operators_see_by_role_and_every_access_is_audited(
    client: TestClient, api: ApiState
) -> None:
    reader = api.store.create_key("dashboard", Role.READ_ONLY)
    admin = api.store.create_key("security", Role.ADMINISTRATOR)
    meters = client.get("/api/v1/meters", headers={"X-API-Key": reader}).json()["meters"]
    assert len(meters) == 200
    assert client.get("/api/v1/audit", headers={"X-API-Key": reader}).status_code == 403
    assert client.get("/api/v1/meters", headers={"X-API-Key": "oak_wrong"}).status_code == 401
    trail = client.get("/api/v1/audit", headers={"X-API-Key": admin}).json()["accesses"]
    whats = [(a["who"], a["status"], a["what"]) for a in trail]
    assert ("operator:dashboard", 200, "GET /api/v1/meters") in whats
    assert ("operator:dashboard", 403, "GET /api/v1/audit") in whats
    assert ("anonymous", 401, "GET /api/v1/meters") in whats


def test_every_third_party_has_the_same_rate_limit(client: TestClient, api: ApiState) -> None:
    from openami.api.access import Limits, RateLimiter

    api.limiter = RateLimiter(Limits(per_second=0.001, burst=3, per_day=1000))
    answers = {}
    for index in (10, 11):
        customer, password, _ = a_customer(api, index)
        _, _, token = consent_flow(client, api, customer, password)
        answers[index] = [
            client.get("/api/v1/meters", headers=bearer(token)).status_code for _ in range(5)
        ]
    assert answers[10] == answers[11] == [200, 200, 200, 429, 429]
    limited = client.get("/api/v1/meters", headers=bearer(token))
    assert int(limited.headers["Retry-After"]) >= 1


def test_usage_points_are_those_of_the_consented_meters(client: TestClient, api: ApiState) -> None:
    customer, password, mine = a_customer(api, 18)
    _, _, token = consent_flow(client, api, customer, password)
    points = client.get("/api/v1/usage-points", headers=bearer(token)).json()["usage_points"]
    assert [p["meters"] for p in points] == [mine]
    reader = api.store.create_key("dashboard", Role.READ_ONLY)
    every = client.get("/api/v1/usage-points", headers={"X-API-Key": reader}).json()
    assert sum(len(p["meters"]) for p in every["usage_points"]) == 200
