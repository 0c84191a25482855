"""The error answers every route documents, so that /openapi.json says what a client may
get back (schemathesis checks every answer against it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["AUTHORIZE_ERRORS", "DATA_ERRORS", "TOKEN_ERRORS", "OAuthError", "Refusal"]


class Refusal(BaseModel):
    detail: str


class OAuthError(BaseModel):
    error: str


def _doc(model: type[BaseModel], **statuses: str) -> dict[int | str, dict[str, Any]]:
    # JSON even on the routes that answer HTML when all is well (the consent page)
    return {
        int(code[1:]): {"model": model, "description": text, "content": {"application/json": {}}}
        for code, text in statuses.items()
    }


DATA_ERRORS = _doc(
    Refusal,
    s400="The request is malformed (a time without offset, a span too long or empty).",
    s401="No valid credentials, or a consent revoked or expired.",
    s403="The operator's role does not allow this.",
    s404="No such meter or consent among those the caller may see.",
    s429="Rate limit or daily quota reached; see Retry-After.",
)
AUTHORIZE_ERRORS = _doc(
    Refusal,
    s400="Unknown client, wrong redirect URI or invalid scope.",
    s401="Wrong customer login (the page again, with the reason).",
)
TOKEN_ERRORS = _doc(
    OAuthError,
    s400="RFC 6749 error: invalid_request, invalid_grant, unsupported_grant_type.",
    s401="invalid_client: client authentication failed.",
)
