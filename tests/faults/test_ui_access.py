"""The finance pages and downloads: finance approvers and auditors only, checked server-side."""

from __future__ import annotations

from pathlib import Path

import pytest

from payments.ledger.migrate import upgrade

USERS = "finance:user,auditor:viewer,operator:op,viewer1:viewer,admin:admin"
ROUTES = ("/reconciliation", "/reconciliation.csv", "/runs/aes-2020-05-000000000000/bundle.zip")


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: str):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    upgrade(url)
    for name, value in {
        "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-secret-for-the-test",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": USERS,
        "PAYMENTS_DATA_DIR": str(tmp_path),
        "PAYMENTS_LEDGER_URL": url,
        "PAYMENTS_FINANCE_APPROVERS": "finance",
        "PAYMENTS_AUDITORS": "auditor",
    }.items():
        monkeypatch.setenv(name, value)
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    from payments.ui.reconciliation import create_app

    manager = create_auth_manager()
    tokens = {
        name: manager.generate_jwt(SimpleAuthManagerUser(username=name, role=role))
        for name, role in (u.split(":") for u in USERS.split(","))
    }
    return TestClient(create_app()), tokens


def _get(client, token: str | None, path: str) -> int:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return int(client.get(path, headers=headers).status_code)


@pytest.mark.parametrize("user", ["viewer1", "operator", "admin"])
def test_a_user_who_is_neither_finance_nor_auditor_is_refused(client, user: str) -> None:  # type: ignore[no-untyped-def]
    """M4: any logged-in user (viewer, operator) read per-household holds and downloaded
    audit bundles."""
    app, tokens = client
    assert [_get(app, tokens[user], path) for path in ROUTES] == [403, 403, 403]


@pytest.mark.parametrize("user", ["finance", "auditor"])
def test_finance_and_auditors_read_the_pages(client, user: str) -> None:  # type: ignore[no-untyped-def]
    app, tokens = client
    assert [_get(app, tokens[user], path) for path in ROUTES] == [200, 200, 404]


def test_without_a_token_nothing_is_served_not_even_the_api_description(client) -> None:  # type: ignore[no-untyped-def]
    app, _ = client
    assert [_get(app, None, path) for path in ROUTES] == [401, 401, 401]
    assert _get(app, None, "/openapi.json") == 404


def test_no_route_blocks_the_api_servers_event_loop(client) -> None:  # type: ignore[no-untyped-def]
    """L6: the routes were `async def` and ran their ledger scans and zip exports on the API
    server's event loop; plain functions run in FastAPI's thread pool."""
    import inspect

    app, _ = client
    ours = [r for r in app.app.routes if getattr(r, "path", "") in ROUTES or "bundle" in r.path]
    assert len(ours) == 3
    assert not [r.path for r in ours if inspect.iscoroutinefunction(r.endpoint)]
