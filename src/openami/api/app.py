"""The Route C HTTP service: one FastAPI application over a data dir and its database.

``create_app(state)`` wires the routes (OAuth2 consent, JSON REST, Green Button), turns a
refusal (``Denied``) into a JSON error with its status (and ``Retry-After`` for rate
limits), and documents the three ways in as OpenAPI security schemes: an operator's API key,
OAuth2 authorization code (third parties) and HTTP Basic (customers).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from openami import __version__
from openami.api import (
    application_routes,
    cim_control_routes,
    data_routes,
    energy_routes,
    espi_routes,
    oauth_routes,
    order_routes,
    subscription_routes,
)
from openami.api.access import Denied
from openami.api.state import ApiState

__all__ = ["create_app"]

DESCRIPTION = """The open interfaces of the openami MDMS: the same for every retailer and
service provider. Customers decide who sees their data (OAuth2 consent, Green Button Connect
My Data); operators use API keys with roles; every data access is in the audit trail."""


def create_app(state: ApiState) -> FastAPI:
    app = FastAPI(title="openami", version=__version__, description=DESCRIPTION)
    app.state.api = state
    app.include_router(oauth_routes.router)
    app.include_router(data_routes.router)
    app.include_router(espi_routes.router)
    app.include_router(application_routes.router)
    app.include_router(order_routes.router)
    app.include_router(cim_control_routes.router)
    app.include_router(energy_routes.router)
    app.include_router(subscription_routes.router)

    @app.exception_handler(Denied)
    async def denied(request: Request, exc: Denied) -> JSONResponse:
        if request.url.path.startswith(("/api/", "/espi/")):  # data routes: audit refusals too
            data_routes.audit(request, getattr(request.state, "caller", None), exc.status, 0)
        headers = {"Retry-After": f"{max(1, round(exc.retry_after))}"} if exc.retry_after else {}
        if exc.status == 401:
            basic = "/ApplicationInformation/" in request.url.path  # client credentials
            headers["WWW-Authenticate"] = f'{"Basic" if basic else "Bearer"} realm="openami"'
        return JSONResponse({"detail": exc.reason}, status_code=exc.status, headers=headers)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "oauth2": {
                    "type": "oauth2",
                    "flows": {
                        "authorizationCode": {
                            "authorizationUrl": "/oauth/authorize",
                            "tokenUrl": "/oauth/token",
                            "refreshUrl": "/oauth/token",
                            "scopes": {
                                "FB=1_3_4_5_13_14;IntervalDuration=1800;BlockDuration=daily;"
                                "HistoryLength=34128000": "Green Button interval data",
                            },
                        }
                    },
                },
                "customerLogin": {"type": "http", "scheme": "basic"},
                "clientCredentials": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "A third party's client_id and client_secret.",
                },
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
