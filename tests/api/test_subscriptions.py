"""Webhook subscriptions end to end: subscriptions made through the service, new reads and
events written to the stores as the MDMS writes them, the service's scan, and deliveries
POSTed by the dispatcher to a real HTTP receiver on 127.0.0.1, whose signatures the
receiver's helper checks. A third party hears only of its consented meters, and nothing
after its consent is revoked; a failing receiver is retried with backoff, always with the
same delivery id, until the delivery fails for good."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient

from openami.api.state import ApiState
from openami.api.store import Role
from openami.api.subscriptions import MAX_SUBSCRIPTIONS, Webhooks, check_url
from openami.api.webhooks import (
    Dispatcher,
    DispatchReport,
    RetryPolicy,
    WebhookWorker,
    verify_signature,
)
from openami.errors import ConfigError
from openami.protocols.dlms.notification import EventCode

from .test_consent import a_customer, bearer, consent_flow

SUBSCRIPTIONS = "/api/v1/subscriptions"
SCAN = "/api/v1/notifications/scan"
UTC_DAY = date(2026, 8, 3)  # a whole UTC day of the demo's validated reads
EVENT_TIME = int(datetime(2026, 8, 3, 12, 0, tzinfo=UTC).timestamp())


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.body)
        return document

    def authentic(self, secret: str, now: float | None = None) -> bool:
        return verify_signature(
            secret,
            self.headers["x-openami-timestamp"],
            self.body,
            self.headers["x-openami-signature"],
            time.time() if now is None else now,
        )


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)


@contextmanager
def receiver(answers: Sequence[int | str] = ()) -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1 (a free port): it keeps every POST and answers with
    ``answers`` in turn (a status, or "slow": 200 after a second), then 204."""
    pending = list(answers)
    lock = threading.Lock()
    got: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        timeout = 5.0

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                got.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                answer = pending.pop(0) if pending else 204
            if answer == "slow":
                time.sleep(1.0)
                answer = 200
            try:
                self.send_response(int(answer))
                if int(answer) == 302:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the dispatcher gave up waiting (the slow answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook", got)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5.0)


def key(value: str) -> dict[str, str]:
    return {"X-API-Key": value}


def new_reads(api: ApiState, meters: list[int]) -> None:
    """A VEE run gives a day's reads of ``meters`` a new version."""
    rows = api.data.validated.current(UTC_DAY, meters)
    assert rows.height
    api.data.validated.append(rows.with_columns(pl.col("version") + 1))


def new_events(api: ApiState, meters: list[int], value: int = 0) -> None:
    """The event ingest stores a power down of each of ``meters``."""
    api.data.events.append(
        {
            "meter_id": meters,
            "time": [EVENT_TIME] * len(meters),
            "code": [int(EventCode.POWER_DOWN)] * len(meters),
            "value": [value] * len(meters),
        }
    )


def dispatcher(api: ApiState, timeout: float = 2.0) -> Dispatcher:
    return Dispatcher(api.webhooks, timeout=timeout, audit=api.store.record)


def wait_for(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def test_a_receiver_gets_signed_deliveries_it_can_verify(client: TestClient, api: ApiState) -> None:
    operator = api.store.create_key("control-room", Role.OPERATOR)
    with receiver() as hook:
        made = client.post(
            SUBSCRIPTIONS,
            json={"url": hook.url, "events": ["reads", "events"], "meters": [1, 2]},
            headers=key(operator),
        )
        assert made.status_code == 201, made.text
        subscription = made.json()
        secret = subscription["secret"]
        assert secret.startswith("whsec_") and subscription["meters"] == [1, 2]
        listed = client.get(SUBSCRIPTIONS, headers=key(operator)).json()["subscriptions"]
        assert [s["subscription_id"] for s in listed] == [subscription["subscription_id"]]
        assert "secret" not in listed[0]  # shown once

        new_reads(api, [1, 2, 3])
        new_events(api, [1, 3])
        # the demo's files were written before the subscription: not news to it
        scanned = client.post(SCAN, headers=key(operator)).json()
        assert scanned == {"files": {"reads": 1, "events": 1}, "deliveries": 3, "errors": []}
        assert client.post(SCAN, headers=key(operator)).json()["deliveries"] == 0  # once
        assert hook.received == []  # a scan enqueues; only the dispatcher posts

        assert dispatcher(api).run_once() == DispatchReport(delivered=3)
        got = hook.received
        assert len(got) == 3 and all(r.path == "/hook" for r in got)
        assert all(r.authentic(secret) for r in got)
        assert len({r.headers["x-openami-delivery"] for r in got}) == 3
        assert all(r.headers["x-openami-delivery"] == r.payload["delivery_id"] for r in got)

        reads = sorted((r for r in got if r.payload["type"] == "reads"), key=lambda r: r.body)
        # a UTC day's new versions close intervals of two days in Japan
        assert sorted(r.payload["day"] for r in reads) == ["2026-08-03", "2026-08-04"]
        for delivery in reads:
            assert delivery.payload["meters"] == [1, 2]  # not meter 3: not subscribed
            fetched = client.get(
                delivery.payload["href"] + "&format=json&page_size=10000", headers=key(operator)
            )
            assert fetched.status_code == 200, fetched.text
            assert {r["meter_id"] for r in fetched.json()["reads"]} == {1, 2}
        (events,) = (r for r in got if r.payload["type"] == "events")
        assert events.payload["events"] == [
            {
                "meter_id": 1,
                "time": "2026-08-03T12:00:00+00:00",
                "event": "power_down",
                "code": 1,
                "value": 0,
            }
        ]

        # what a receiver rejects: a changed body, an old or future timestamp, another
        # secret, a signature that is not one
        one = reads[0]
        forged = one.body.replace(b'"meters":[1,2]', b'"meters":[1,2,3]')
        assert forged != one.body
        stamp, signature = one.headers["x-openami-timestamp"], one.headers["x-openami-signature"]
        assert not verify_signature(secret, stamp, one.body + b" ", signature, time.time())
        assert not verify_signature(secret, stamp, forged, signature, time.time())
        assert not verify_signature(secret, stamp, one.body, signature, int(stamp) + 301)
        assert not verify_signature(secret, stamp, one.body, signature, int(stamp) - 301)
        assert verify_signature(secret, stamp, one.body, signature, int(stamp) + 299)
        assert not verify_signature("whsec_other", stamp, one.body, signature, time.time())
        assert not verify_signature(secret, "soon", one.body, signature, time.time())
        assert not verify_signature(secret, stamp, one.body, "sha256=00", time.time())

        log = client.get(
            f"{SUBSCRIPTIONS}/{subscription['subscription_id']}/deliveries",
            headers=key(operator),
        ).json()["deliveries"]
        assert [(d["status"], d["attempts"], d["last_status"]) for d in log] == [
            ("delivered", 1, 204)
        ] * 3
        trail = [a for a in api.store.accesses() if a.what.startswith("WEBHOOK ")]
        assert len(trail) == 3 and {a.who for a in trail} == {"operator:control-room"}


def test_a_third_party_only_ever_hears_of_its_consented_meters(
    client: TestClient, api: ApiState
) -> None:
    customer, password, mine = a_customer(api, 3)
    _, _, token = consent_flow(client, api, customer, password)
    operator = api.store.create_key("control-room", Role.OPERATOR)
    outside = next(m for m in range(1, 201) if m not in mine)
    with receiver() as hook:
        wanted = {"url": hook.url + "/third", "events": ["reads", "events"]}
        refused = client.post(
            SUBSCRIPTIONS, json={**wanted, "meters": [outside]}, headers=bearer(token)
        )
        assert refused.status_code == 404  # as for reading it: no such meter for this caller
        made = client.post(SUBSCRIPTIONS, json=wanted, headers=bearer(token))
        assert made.status_code == 201, made.text
        third = made.json()
        assert third["meters"] is None and third["consent_id"]  # every consented meter
        assert client.post(SUBSCRIPTIONS, json=wanted, auth=(customer, password)).status_code == 403
        everything = {**wanted, "url": hook.url + "/operator"}
        client.post(SUBSCRIPTIONS, json=everything, headers=key(operator))
        listed = client.get(SUBSCRIPTIONS, headers=bearer(token)).json()["subscriptions"]
        assert [s["subscription_id"] for s in listed] == [third["subscription_id"]]

        fleet = list(range(1, 201))
        new_reads(api, fleet)
        new_events(api, fleet)
        client.post(SCAN, headers=key(operator))
        dispatcher(api).run_once()
        to_third = [r for r in hook.received if r.path == "/hook/third"]
        to_operator = [r for r in hook.received if r.path == "/hook/operator"]
        assert all(r.authentic(third["secret"]) for r in to_third)
        assert {r.payload["type"] for r in to_third} == {"reads", "events"}
        for delivery in to_third:
            if delivery.payload["type"] == "reads":
                assert delivery.payload["meters"] == sorted(mine)
                fetched = client.get(delivery.payload["href"], headers=bearer(token))
                assert fetched.status_code == 200  # the link is one it may follow
            else:
                assert {e["meter_id"] for e in delivery.payload["events"]} == set(mine)
        # the same news to an operator covers the whole fleet
        operator_reads = [r.payload for r in to_operator if r.payload["type"] == "reads"]
        assert all(p["meters"] == fleet and "meters=1-200" in p["href"] for p in operator_reads)
        (operator_events,) = [r.payload for r in to_operator if r.payload["type"] == "events"]
        assert len(operator_events["events"]) == 200


def test_after_revocation_nothing_more_is_delivered(client: TestClient, api: ApiState) -> None:
    customer, password, mine = a_customer(api, 5)
    _, _, token = consent_flow(client, api, customer, password)
    operator = api.store.create_key("control-room", Role.OPERATOR)
    with receiver() as hook:
        made = client.post(
            SUBSCRIPTIONS, json={"url": hook.url, "events": ["events"]}, headers=bearer(token)
        ).json()
        new_events(api, mine, value=1)
        client.post(SCAN, headers=key(operator))
        assert dispatcher(api).run_once().delivered == 1
        new_events(api, mine, value=2)
        assert client.post(SCAN, headers=key(operator)).json()["deliveries"] == 1

        (consent,) = client.get("/api/v1/consents", auth=(customer, password)).json()["consents"]
        client.delete(f"/api/v1/consents/{consent['consent_id']}", auth=(customer, password))
        # what was waiting is not sent, and what comes later is not even enqueued
        assert dispatcher(api).run_once() == DispatchReport(dropped=1)
        new_events(api, mine, value=3)
        assert client.post(SCAN, headers=key(operator)).json()["deliveries"] == 0
        assert dispatcher(api).run_once() == DispatchReport()
        assert len(hook.received) == 1
        assert [e["value"] for e in hook.received[0].payload["events"]] == [1] * len(mine)

    log = api.webhooks.deliveries(made["subscription_id"])
    assert [(d.status, d.last_error) for d in log] == [
        ("failed", "the consent was revoked"),
        ("delivered", None),
    ]
    (ended,) = api.webhooks.subscriptions(subscription_id=made["subscription_id"])
    assert not ended.active
    assert client.get(SUBSCRIPTIONS, headers=bearer(token)).status_code == 401


def test_a_failing_receiver_is_retried_with_backoff_then_failed(
    client: TestClient, api: ApiState
) -> None:
    operator = api.store.create_key("control-room", Role.OPERATOR)
    with receiver([500] * 8) as hook:
        made = client.post(
            SUBSCRIPTIONS,
            json={"url": hook.url, "events": ["events"], "meters": [7]},
            headers=key(operator),
        ).json()
        new_events(api, [7])
        client.post(SCAN, headers=key(operator))
        posting = dispatcher(api)
        at = datetime.now(UTC)
        waits = []
        for attempt in range(1, 9):
            report = posting.run_once(at)
            (delivery,) = api.webhooks.deliveries(made["subscription_id"])
            assert delivery.attempts == attempt
            assert (delivery.last_status, delivery.last_error) == (500, "HTTP 500")
            if attempt == 8:
                assert report == DispatchReport(failed=1) and delivery.status == "failed"
                break
            assert report == DispatchReport(retrying=1) and delivery.status == "pending"
            wait = delivery.next_attempt_at - at
            waits.append(wait.total_seconds())
            # not a moment earlier
            assert posting.run_once(at + wait - timedelta(milliseconds=1)) == DispatchReport()
            at += wait
        assert waits == [1, 2, 4, 8, 16, 32, 64]
        assert posting.run_once(at + timedelta(days=1)) == DispatchReport()  # given up
        got = hook.received
        assert len(got) == 8
        assert len({r.headers["x-openami-delivery"] for r in got}) == 1  # one delivery
        assert len({r.body for r in got}) == 1
        assert all(r.authentic(made["secret"]) for r in got)  # each signed when it was sent
        assert len({r.headers["x-openami-timestamp"] for r in got}) == 8


def test_redelivery_after_failures_keeps_the_delivery_id(client: TestClient, api: ApiState) -> None:
    operator = api.store.create_key("control-room", Role.OPERATOR)
    # refused, too slow, a redirect (never followed), then taken
    with receiver([503, "slow", 302, 200]) as hook:
        made = client.post(
            SUBSCRIPTIONS,
            json={"url": hook.url, "events": ["events"], "meters": [8]},
            headers=key(operator),
        ).json()
        new_events(api, [8])
        client.post(SCAN, headers=key(operator))
        posting = Dispatcher(api.webhooks, timeout=0.5, policy=RetryPolicy(first_delay=1.0))
        at = datetime.now(UTC)
        errors = []
        for offset in (0, 1, 3, 7):
            posting.run_once(at + timedelta(seconds=offset))
            (delivery,) = api.webhooks.deliveries(made["subscription_id"])
            errors.append(delivery.last_error)
        assert errors[0] == "HTTP 503" and "timed out" in str(errors[1])
        assert errors[2] == "HTTP 302" and errors[3] is None
        assert (delivery.status, delivery.attempts, delivery.last_status) == ("delivered", 4, 200)
        got = hook.received
        assert [r.path for r in got] == ["/hook"] * 4  # the redirect was not followed
        assert {r.headers["x-openami-delivery"] for r in got} == {delivery.delivery_id}
        log = client.get(
            f"{SUBSCRIPTIONS}/{made['subscription_id']}/deliveries", headers=key(operator)
        ).json()["deliveries"]
        assert log[0]["delivery_id"] == delivery.delivery_id and log[0]["status"] == "delivered"
        assert log[0]["payload"]["events"][0]["meter_id"] == 8


def test_a_deleted_subscription_is_silent_and_only_its_owner_sees_it(
    client: TestClient, api: ApiState
) -> None:
    owner = api.store.create_key("control-room", Role.OPERATOR)
    other = api.store.create_key("billing", Role.OPERATOR)
    reader = api.store.create_key("dashboard", Role.READ_ONLY)
    admin = api.store.create_key("security", Role.ADMINISTRATOR)
    with receiver() as hook:
        made = client.post(
            SUBSCRIPTIONS,
            json={"url": hook.url, "events": ["events"], "meters": [9]},
            headers=key(owner),
        ).json()
        path = f"{SUBSCRIPTIONS}/{made['subscription_id']}"
        assert client.delete(path, headers=key(other)).status_code == 404
        assert client.get(f"{path}/deliveries", headers=key(other)).status_code == 404
        assert client.get(SUBSCRIPTIONS, headers=key(other)).json()["subscriptions"] == []
        assert client.post(SCAN, headers=key(reader)).status_code == 403  # operator role
        new_events(api, [9])
        assert client.post(SCAN, headers=key(owner)).json()["deliveries"] == 1
        assert client.delete(path, headers=key(owner)).json() == {
            "subscription_id": made["subscription_id"],
            "active": False,
            "ended": True,
        }
        assert client.delete(path, headers=key(owner)).json()["ended"] is False
        assert dispatcher(api).run_once() == DispatchReport()  # its pending one was failed
        new_events(api, [9], value=1)
        assert client.post(SCAN, headers=key(owner)).json()["deliveries"] == 0
        assert hook.received == []
    everyone = client.get(SUBSCRIPTIONS, headers=key(admin)).json()["subscriptions"]
    assert [(s["owner"], s["active"]) for s in everyone] == [("operator:control-room", False)]
    log = client.get(f"{path}/deliveries", headers=key(admin)).json()["deliveries"]
    assert [(d["status"], d["last_error"]) for d in log] == [
        ("failed", "the subscription was deleted")
    ]


def test_subscriptions_are_checked_and_limited(client: TestClient, api: ApiState) -> None:
    operator = api.store.create_key("control-room", Role.OPERATOR)
    for url in ("http://example.com/hook", "https://10.1.2.3/hook", "ftp://127.0.0.1/x"):
        answer = client.post(
            SUBSCRIPTIONS, json={"url": url, "events": ["reads"]}, headers=key(operator)
        )
        assert answer.status_code == 400, url
    for events in ([], ["bills"]):
        answer = client.post(
            SUBSCRIPTIONS,
            json={"url": "https://retailer.example/hook", "events": events},
            headers=key(operator),
        )
        assert answer.status_code == 422
    made = [
        client.post(
            SUBSCRIPTIONS,
            json={"url": f"https://retailer.example/hook/{k}", "events": ["reads"]},
            headers=key(operator),
        ).status_code
        for k in range(MAX_SUBSCRIPTIONS + 1)
    ]
    assert made == [201] * MAX_SUBSCRIPTIONS + [409]  # the same limit for everyone


def test_the_worker_scans_and_delivers_on_its_own_and_stops(api: ApiState) -> None:
    hooks = api.webhooks
    worker = WebhookWorker(
        hooks,
        dispatcher(api),
        api.data.validated.reads_dir,
        api.data.events.events_dir,
        every=0.05,
    )
    with receiver() as hook:
        _, secret = hooks.subscribe(
            owner="operator:control-room", owner_kind="operator", url=hook.url, events=["events"]
        )
        worker.start()
        try:
            new_events(api, [11, 12])
            assert wait_for(lambda: len(hook.received) == 1)
        finally:
            assert worker.stop(timeout=10.0)
        assert hook.received[0].authentic(secret)
        new_events(api, [13])
        time.sleep(0.3)
        assert len(hook.received) == 1  # stopped: nothing more


def test_concurrent_scans_announce_each_file_once(api: ApiState) -> None:
    # two services over one database (each its own Webhooks, its own lock)
    first, second = api.webhooks, Webhooks(api.store.engine)
    first.subscribe(
        owner="operator:control-room",
        owner_kind="operator",
        url="https://retailer.example/hook",
        events=["events", "reads"],
    )
    new_events(api, [1, 2, 3])
    new_reads(api, [1, 2, 3])
    made: list[int] = []
    start = threading.Barrier(2)

    def scan(webhooks: Webhooks) -> None:
        start.wait(5.0)
        made.append(
            webhooks.scan(api.data.validated.reads_dir, api.data.events.events_dir).deliveries
        )

    threads = [threading.Thread(target=scan, args=(w,)) for w in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30.0)
    # 2 days of reads and 1 of events, once: one scan may take all, or each a file
    assert len(made) == 2 and sum(made) == 3
    (subscription,) = first.subscriptions()
    assert len(first.deliveries(subscription.subscription_id)) == 3


def test_an_unreadable_file_does_not_hold_up_the_others(api: ApiState) -> None:
    hooks = api.webhooks
    made, _ = hooks.subscribe(
        owner="operator:control-room",
        owner_kind="operator",
        url="https://retailer.example/hook",
        events=["events"],
    )
    broken = api.data.events.events_dir / "day=2026-08-01"
    broken.mkdir()
    (broken / f"part-{datetime.now(UTC):%Y%m%dT%H%M%S%f}-0badf11e.parquet").write_bytes(b"PAR1")
    new_events(api, [1])
    report = hooks.scan(api.data.validated.reads_dir, api.data.events.events_dir)
    assert report.deliveries == 1 and len(report.errors) == 1
    assert "day=2026-08-01" in report.errors[0]
    assert len(hooks.deliveries(made.subscription_id)) == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://retailer.example/hooks/openami",
        "https://retailer.example:8443/h?x=1",
        "http://127.0.0.1:9000/hook",
        "http://localhost/hook",
        "http://[::1]:9000/hook",
    ],
)
def test_callback_urls_that_are_accepted(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://retailer.example/hook",  # clear text off the machine
        "http://localhost.evil.example/hook",
        "https://10.0.0.8/hook",  # private, link-local and other non-public addresses
        "https://169.254.169.254/latest/meta-data",
        "https://[fd00::1]/hook",
        "https://user:secret@retailer.example/hook",
        "https://retailer.example/hook#frag",
        "https://retailer.example:99999/hook",
        "ftp://127.0.0.1/hook",
        "file:///etc/passwd",
        "https:///hook",
        "https://retailer.example/a b",
        "https://retailer.example/" + "x" * 600,
    ],
)
def test_callback_urls_that_are_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        check_url(url)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"delivery_id":"dlv_1","type":"events"}'
    expected = hmac.new(b"whsec_test", b"1785722400." + body, hashlib.sha256).hexdigest()
    signature = f"sha256={expected}"
    assert verify_signature("whsec_test", "1785722400", body, signature, 1785722400.0)
    assert verify_signature("whsec_test", 1785722400, body, signature, 1785722700.0)
    assert not verify_signature("whsec_test", "1785722400", body, signature, 1785722701.0)
    assert not verify_signature("whsec_test", "1785722401", body, signature, 1785722400.0)
    assert not verify_signature("whsec_test", "1785722400", body[:-1], signature, 1785722400.0)
    assert not verify_signature("whsec_test", "1785722400", body, expected, 1785722400.0)
