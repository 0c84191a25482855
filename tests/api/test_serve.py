"""The consent flow against ``openami api serve`` as a real process over HTTP: a third party
completes it and reads only what it was granted."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from base64 import b64encode
from datetime import UTC, datetime
from pathlib import Path

from openami.api.state import ApiState
from tests.conftest import free_port
from tests.processes import openami

REDIRECT = "https://solar.example/cb"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _call(
    url: str, data: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers or {})  # noqa: S310
    try:
        with _opener.open(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_a_third_party_completes_the_consent_flow_against_the_server(
    demo_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(demo_dir, data)
    state = ApiState.open(data)
    row = state.data.customers(datetime.now(UTC))[20]
    password = state.store.set_login(row.customer)
    third, secret = state.store.register_client("Solar Co", REDIRECT)
    state.close()
    port = free_port()
    server = subprocess.Popen(
        openami("api", "serve", "--data-dir", str(data), "--port", str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):  # until it listens (bounded: 10 s)
            try:
                if _call(f"{base}/openapi.json")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        query = {"client_id": third.client_id, "redirect_uri": REDIRECT, "state": "s"}
        status, _, page = _call(f"{base}/oauth/authorize?{urllib.parse.urlencode(query)}")
        assert status == 200 and b"Solar Co" in page
        status, headers, _ = _call(
            f"{base}/oauth/authorize",
            {**query, "customer": row.customer, "password": password, "decision": "allow"},
        )
        assert status == 303
        code = urllib.parse.parse_qs(urllib.parse.urlparse(headers["location"]).query)["code"][0]
        basic = b64encode(f"{third.client_id}:{secret}".encode()).decode()
        status, _, body = _call(
            f"{base}/oauth/token",
            {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
            {"Authorization": f"Basic {basic}"},
        )
        assert status == 200
        token = {"Authorization": f"Bearer {json.loads(body)['access_token']}"}
        span = "start=2026-08-03T00%3A00%2B09%3A00&end=2026-08-04T00%3A00%2B09%3A00"
        mine = row.meters[0]
        status, _, body = _call(f"{base}/api/v1/meters/{mine}/interval-reads?{span}", None, token)
        assert status == 200 and json.loads(body)["total"] == 96
        other = 1 if mine != 1 else 2
        status, _, _ = _call(f"{base}/api/v1/meters/{other}/interval-reads?{span}", None, token)
        assert status == 404
        status, _, body = _call(f"{base}/api/v1/meters", None, token)
        assert [m["meter_id"] for m in json.loads(body)["meters"]] == list(row.meters)
    finally:
        server.terminate()
        server.communicate(timeout=10)
