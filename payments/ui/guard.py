"""The check in front of every route: who is asking, and may they.

``guard(action)`` is a FastAPI dependency: it authenticates the request as
Airflow's API server does (its JWT, from the UI's session cookie or a bearer
token), then asks :func:`payments.ui.access.may`. A form that changes
something (release a hold, apply a report, start an audit) must also come
from a page of this server: a request carrying the session cookie from
another site is refused (the cookie alone proves nothing about intent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request

from payments.ui.access import Role, may, roles_of, who_may


@dataclass(frozen=True)
class Visitor:
    """The user behind a request, with what the pages need to know of them."""

    user: Any
    roles: frozenset[Role]
    #: The app's own prefix as the browser sees it (``/payments`` behind Airflow).
    base: str

    @property
    def id(self) -> str:
        return str(self.user.get_id())

    @property
    def name(self) -> str:
        return str(self.user.get_name())


def _authenticated() -> Callable[..., Any]:
    from airflow.api_fastapi.core_api.security import get_user

    return get_user


def guard(action: str) -> Callable[..., Visitor]:
    """A dependency refusing (403, saying who may) anyone whose roles do not allow ``action``."""
    get_user = _authenticated()

    # A default, not an annotation: annotations are strings here (PEP 563), and FastAPI
    # would look ``get_user`` up in the module, where it is not.
    def check(request: Request, user: Any = Depends(get_user)) -> Visitor:  # noqa: B008
        if not may(user, action):
            raise HTTPException(403, f"this needs the {who_may(action)} role")
        if request.method not in ("GET", "HEAD"):
            _same_origin(request)
        return Visitor(user, roles_of(user), str(request.scope.get("root_path", "")).rstrip("/"))

    return check


def _same_origin(request: Request) -> None:
    """A change comes from this server's pages, or from a client sending its token itself."""
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return
    source = request.headers.get("origin") or request.headers.get("referer") or ""
    host = request.headers.get("host", "")
    if not source or urlsplit(source).netloc != host:
        raise HTTPException(403, "a change must be made from the payments pages of this server")
