"""Every payments page and download, asked by every role: allowed ones pass, others get 403.

Airflow's own auth manager (simple) issues the tokens and resolves the users;
the app is the one the plugin mounts, over a ledger and storage root holding a
paid run. The expected policy is written out here, route by route, apart from
the code's table: a route added without a line here fails the test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from payments.ledger.migrate import engine_for
from payments.ledger.models import Hold, Payment
from payments.sepa.signing import generate_demo_pair, load_signer
from tests.vouchers import signing_key

USERS = {
    "finance": "user",
    "auditor": "viewer",
    "operator": "op",
    "viewer1": "viewer",
    "admin": "admin",
}
ROLES = {"finance": "finance", "auditor": "auditor", "operator": "operator", "viewer1": "viewer"}
EVERYONE = {"finance", "auditor", "operator"}
#: Route (method, path template) → the payments roles allowed; everyone else gets 403.
POLICY: dict[tuple[str, str], set[str]] = {
    ("GET", "/runs"): EVERYONE,
    ("GET", "/runs/{run_id}"): EVERYONE,
    ("GET", "/runs/{run_id}/decide"): {"finance"},
    ("POST", "/runs/{run_id}/decision"): {"finance"},
    ("GET", "/holds"): {"finance", "auditor"},
    ("GET", "/holds/{payment_id}"): {"finance", "auditor"},
    ("POST", "/holds/{payment_id}/release"): {"finance"},
    ("GET", "/quarantine"): EVERYONE,
    ("GET", "/quarantine/{run_id}/{fund}.csv"): EVERYONE,
    ("GET", "/bank"): EVERYONE,
    ("POST", "/bank/reports"): {"finance"},
    ("GET", "/reconciliation"): {"finance", "auditor"},
    ("GET", "/reconciliation.csv"): {"finance", "auditor"},
    ("GET", "/audit"): {"auditor"},
    ("POST", "/audit/checks"): {"auditor"},
    ("GET", "/runs/{run_id}/bundle.zip"): {"finance", "auditor"},
    ("GET", "/certificate.pem"): {"finance", "auditor"},
    ("GET", "/voucher"): {"finance", "operator"},
}


@pytest.fixture(scope="module")
def paid_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str, int]:
    """A paid run of two funds: (data dir, ledger URL, run id, a held payment's id)."""
    from tests.bank_simulator import sent_batch

    root = tmp_path_factory.mktemp("ui-access")
    (root / "secrets").mkdir()
    generate_demo_pair(
        root / "secrets/signing-key.pem", root / "secrets/signing-cert.pem", common_name="t"
    )
    signer = load_signer(root / "secrets/signing-key.pem", root / "secrets/signing-cert.pem")
    signing_key(root)  # the API server's identity key, for the vouchers its pages sign
    url = f"sqlite:///{root / 'ledger.sqlite'}"
    from datetime import datetime

    sent_batch(engine_for(url), root, signer, ("01", "75"), seed=5, at=datetime(2020, 5, 14, 9))
    run_id = (root / "runs" / "LATEST").read_text().strip()
    with Session(engine_for(url)) as session:
        held = session.execute(select(Hold.payment_id).limit(1)).scalar_one()
    return root, url, run_id, held


@pytest.fixture
def client(paid_run, monkeypatch: pytest.MonkeyPatch, airflow_db: str):  # type: ignore[no-untyped-def]
    root, url, _, _ = paid_run
    for name, value in {
        "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-secret-for-the-test",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
        "PAYMENTS_DATA_DIR": str(root),
        "PAYMENTS_LEDGER_URL": url,
        "PAYMENTS_FINANCE_APPROVERS": "finance",
        "PAYMENTS_AUDITORS": "auditor",
        "PAYMENTS_OPERATORS": "operator",
    }.items():
        monkeypatch.setenv(name, value)
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    from payments.ui.app import create_app

    manager = create_auth_manager()
    tokens = {
        name: manager.generate_jwt(SimpleAuthManagerUser(username=name, role=role))
        for name, role in USERS.items()
    }
    return TestClient(create_app()), tokens


def _path(template: str, paid_run: tuple[Path, str, str, int]) -> str:
    _, _, run_id, held = paid_run
    return template.format(run_id=run_id, payment_id=held, fund="01")


def _ask(app: Any, method: str, path: str, token: str | None, **extra: Any) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # A POST is sent empty: a role that passes the guard is then refused by the route's
    # own checks (400/422), and nothing changes.
    return int(app.request(method, path, headers=headers, **extra).status_code)


def test_the_policy_names_every_route_of_the_app(client) -> None:  # type: ignore[no-untyped-def]
    app, _ = client
    routes = {
        (method, route.path)
        for route in app.app.routes
        if hasattr(route, "methods") and route.path not in ("/openapi.json",)
        for method in route.methods - {"HEAD"}
    }
    assert routes == set(POLICY)


@pytest.mark.parametrize("user", [*ROLES, "admin"])
def test_each_role_gets_what_the_policy_allows_and_nothing_else(
    client, paid_run, user: str
) -> None:  # type: ignore[no-untyped-def]
    app, tokens = client
    role = ROLES.get(user, "viewer")  # Airflow's admin is listed nowhere here: a viewer
    answers = {
        (method, template): _ask(app, method, _path(template, paid_run), tokens[user])
        for method, template in POLICY
    }
    denied = {route for route, code in answers.items() if code == 403}
    expected_denied = {route for route, roles in POLICY.items() if role not in roles}
    assert denied == expected_denied, answers
    reads = {r: c for r, c in answers.items() if r[0] == "GET" and r not in denied}
    assert set(reads.values()) <= {200}, reads


def test_nothing_is_served_without_a_login_not_even_the_api_description(client, paid_run) -> None:  # type: ignore[no-untyped-def]
    app, _ = client
    answers = {route: _ask(app, route[0], _path(route[1], paid_run), None) for route in POLICY}
    assert set(answers.values()) == {401}, answers
    assert _ask(app, "GET", "/openapi.json", None) == 404


def test_a_change_posted_from_another_site_with_the_session_cookie_is_refused(
    client, paid_run
) -> None:  # type: ignore[no-untyped-def]
    """The UI's session cookie goes with any request the browser makes, a form on another
    site included: a change must come from a page of this server."""
    app, tokens = client
    _, _, _, held = paid_run
    app.cookies.set("_token", tokens["finance"])
    path = f"/holds/{held}/release"
    elsewhere = app.post(path, data={"note": "x"}, headers={"Origin": "https://evil.example"})
    assert elsewhere.status_code == 403
    assert "payments pages" in elsewhere.json()["detail"]
    nowhere = app.post(path, data={"note": "x"})
    assert nowhere.status_code == 403
    here = app.post(path, data={"note": ""}, headers={"Origin": "http://testserver"})
    assert here.status_code == 400  # past the guard: refused by the route (a note is needed)


def test_no_route_blocks_the_api_servers_event_loop(client) -> None:  # type: ignore[no-untyped-def]
    """L6: the routes were `async def` and ran their ledger scans and zip exports on the API
    server's event loop; plain functions run in FastAPI's thread pool."""
    import inspect

    app, _ = client
    ours = [
        r for r in app.app.routes if (next(iter(getattr(r, "methods", {""}))), r.path) in POLICY
    ]
    assert len(ours) == len(POLICY)
    assert not [r.path for r in ours if inspect.iscoroutinefunction(r.endpoint)]


def _post_unread(app: Any, headers: list[tuple[bytes, bytes]]) -> tuple[int, int]:
    """POST an upload to the app at the ASGI level; (status, body chunks the app read)."""
    import asyncio

    read: list[int] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        read.append(1)
        return {"type": "http.request", "body": b"x" * 65_536, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/bank/reports",
        "raw_path": b"/bank/reports",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    return int(sent[0]["status"]), len(read)


def test_a_body_is_not_read_before_its_sender_is_known(client) -> None:  # type: ignore[no-untyped-def]
    """N9: the API server spooled a whole unauthenticated upload to disk (200 MB) before it
    answered 401: FastAPI parses a form body before the route's guard runs."""
    app, tokens = client
    huge = [(b"content-type", b"multipart/form-data; boundary=x"), (b"content-length", b"2" * 9)]
    assert _post_unread(app.app, huge) == (401, 0)
    forged = [*huge, (b"authorization", b"Bearer not-a-token")]
    assert _post_unread(app.app, forged)[1] == 0
    finance = [(b"authorization", f"Bearer {tokens['finance']}".encode())]
    assert _post_unread(app.app, [*huge, *finance]) == (413, 0)  # over a report's cap
    chunked = [(b"content-type", b"multipart/form-data; boundary=x"), *finance]
    assert _post_unread(app.app, chunked) == (411, 0)


def test_no_page_can_be_framed_by_another_site(client) -> None:  # type: ignore[no-untyped-def]
    """N12: no ``frame-ancestors``/``X-Frame-Options``: a page of the same site could frame the
    confirm page and have "Confirm: approve" clicked."""
    app, tokens = client
    for token in (tokens["finance"], None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = app.get("/runs", headers=headers)
        assert answer.headers["x-frame-options"] == "SAMEORIGIN"
        assert answer.headers["content-security-policy"] == "frame-ancestors 'self'"


def test_the_audit_page_offers_the_certificate_a_bundle_is_checked_with(client, paid_run) -> None:  # type: ignore[no-untyped-def]
    """Issue 37: the auditor had to fetch the signing certificate at a terminal to check a
    bundle offline."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    app, tokens = client
    root = paid_run[0]
    auditor = {"Authorization": f"Bearer {tokens['auditor']}"}
    pem = app.get("/certificate.pem", headers=auditor)
    assert pem.status_code == 200
    assert pem.content == (root / "secrets" / "signing-cert.pem").read_bytes()
    fingerprint = x509.load_pem_x509_certificate(pem.content).fingerprint(hashes.SHA256())
    page = app.get("/audit", headers=auditor).text
    assert 'id="certificate"' in page and fingerprint.hex(":").upper() in page


@pytest.fixture(scope="module")
def rejected_run(paid_run) -> str:  # type: ignore[no-untyped-def]
    """A run of fund 2A finance rejected, beside the paid one."""
    from datetime import datetime

    from payments.pipeline import run_batch
    from payments.release import reject
    from payments.sample.writer import SampleSpec, write_sample
    from payments.schemes import load_scheme
    from tests.conftest import MAY_2020
    from tests.households import APPROVERS, SECRET

    root, url, _, _ = paid_run
    write_sample(SampleSpec(households=300, seed=6, window=MAY_2020, funds=("2A",)), root)
    signer = load_signer(root / "secrets/signing-key.pem", root / "secrets/signing-cert.pem")
    result = run_batch(root, load_scheme("aes-2020-05"), secret=SECRET, signer=signer,
                       ledger_url=url, funds=["2A"], triggered_by="operator")  # fmt: skip
    reject(engine_for(url), result.run_id, by="finance", at=datetime(2020, 5, 14, 10),
           approvers=APPROVERS)  # fmt: skip
    return result.run_id


def test_a_rejected_run_reads_as_rejected(client, rejected_run: str) -> None:  # type: ignore[no-untyped-def]
    """Issue 37: a rejected run's page still headlined "To be paid"."""
    app, tokens = client
    page = app.get(
        f"/runs/{rejected_run}", headers={"Authorization": f"Bearer {tokens['finance']}"}
    )
    assert page.status_code == 200
    assert "rejected by finance" in page.text
    assert "Not paid (rejected)" in page.text and "To be paid" not in page.text


@pytest.fixture(scope="module")
def shared_account(paid_run) -> int:  # type: ignore[no-untyped-def]
    """A run of fund 2B where five households give one account: a held payment's id."""
    from payments.pipeline import run_batch
    from payments.sample.writer import SampleSpec, write_sample
    from payments.schemes import load_scheme
    from tests.conftest import MAY_2020
    from tests.faults.runs import edit_fund_file
    from tests.households import SECRET

    root, url, _, _ = paid_run
    write_sample(SampleSpec(households=300, seed=7, window=MAY_2020, funds=("2B",)), root)

    def one_account(rows: list[list[str]], col: dict[str, int]) -> None:
        for row in rows[1:5]:
            row[col["iban"]] = rows[0][col["iban"]]

    edit_fund_file(root, "2B", one_account)
    signer = load_signer(root / "secrets/signing-key.pem", root / "secrets/signing-cert.pem")
    result = run_batch(root, load_scheme("aes-2020-05"), secret=SECRET, signer=signer,
                       ledger_url=url, funds=["2B"], triggered_by="operator")  # fmt: skip
    with Session(engine_for(url)) as session:
        held = (
            session.execute(
                select(Hold.payment_id)
                .join(Payment, Payment.id == Hold.payment_id)
                .where(Payment.run_id == result.run_id, Hold.reasons.contains("shared_iban"))
                .order_by(Hold.payment_id)
            )
            .scalars()
            .all()
        )
    assert len(held) >= 2, held
    return int(held[0])


def test_a_shared_account_hold_lists_the_other_households_on_it(client, shared_account) -> None:  # type: ignore[no-untyped-def]
    """Issue 37: a shared-IBAN hold did not show the other households on the IBAN."""
    app, tokens = client
    page = app.get(
        f"/holds/{shared_account}", headers={"Authorization": f"Bearer {tokens['finance']}"}
    )
    assert page.status_code == 200
    listed = page.text.split('id="same-account"', 1)[1].split("</table>", 1)[0]
    assert listed.count("<tr>") >= 2  # the heading and at least one other household
    assert "/holds/" in listed  # each opens on its own hold
    assert "FR76" not in listed  # no IBAN in clear
