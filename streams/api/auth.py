"""Bearer tokens with two scopes: read (every GET) and admin (every change).

With no token configured the API is open, and ``serve`` binds it to 127.0.0.1
only: whoever can reach it is on this machine.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from streams.api.context import Context
from streams.api.models import Message

_bearer = HTTPBearer(auto_error=False, description="A read or admin token (MILLSTREAM_API_*_TOKENS)")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


ROUTE_RESPONSES: dict[int | str, dict[str, Any]] = {  # every /v1 route's (routers declare them)
    400: {"model": Message, "description": "A body that is not JSON (routes that take a JSON object)"},
    401: {"model": Message, "description": "No token, or one that is not configured"},
    403: {"model": Message, "description": "A read token on a route that needs the admin scope"},
}


def invalid(loc: list[str | int], msg: str) -> HTTPException:
    """A 422 shaped like FastAPI's own: a list of problems, each naming where."""
    return HTTPException(422, [{"loc": loc, "msg": msg, "type": "value_error"}])


def context(request: Request) -> Context:
    return request.app.state.context  # type: ignore[no-any-return]


def _scope(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str:
    api = context(request).api
    if api.open:
        return "admin"
    scope = api.scope_of(credentials.credentials) if credentials else None
    if scope is None:
        raise HTTPException(401, "missing or invalid bearer token", headers=_CHALLENGE)
    return scope


Credentials = HTTPAuthorizationCredentials | None


async def reader(request: Request, credentials: Credentials = Security(_bearer)) -> str:
    """Dependency of every read route: any valid token."""
    return _scope(request, credentials)


async def admin(request: Request, credentials: Credentials = Security(_bearer)) -> str:
    """Dependency of every route that changes something: an admin token."""
    if _scope(request, credentials) != "admin":
        raise HTTPException(403, "this route needs the admin scope")
    return "admin"
