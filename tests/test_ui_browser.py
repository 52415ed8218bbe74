"""The Reconciliation page in the Airflow UI, in a real headless browser (Debian's chromium).

A real ``airflow api-server`` with our plugin, a ledger holding a paid batch
the bank has answered (accepted and rejected payments), a real login token:
the page loads, its totals equal the ledger's, the CSV download works, and
nobody gets in without logging in. Without chromium the test is skipped,
unless PAYMENTS_REQUIRE_BROWSER is set (CI sets it), then it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payments.bank.lines import read_report
from payments.bank.reports import apply_report
from payments.ledger.migrate import engine_for
from payments.ledger.models import Payment
from payments.orchestration.summary import euros
from payments.sepa.signing import generate_demo_pair, load_signer
from tests.bank_simulator import sent_batch, status_report
from tests.browser import chrome, downloaded, log_in, require_browser

ROOT = Path(__file__).resolve().parents[1]
AT = datetime(2020, 5, 14, 9, 0)


@pytest.fixture(scope="module")
def answered_ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A paid batch of two funds, answered by the bank with some rejections."""
    root = tmp_path_factory.mktemp("ui-data")
    keys = root / "secrets"  # where the page finds the certificate for audit bundles
    keys.mkdir()
    generate_demo_pair(keys / "signing-key.pem", keys / "signing-cert.pem", common_name="t")
    signer = load_signer(keys / "signing-key.pem", keys / "signing-cert.pem")
    url = f"sqlite:///{root / 'ledger.sqlite'}"
    engine = engine_for(url)
    sent_batch(engine, root, signer, ("01", "75"), seed=21, at=AT)
    for path in sorted((root / "bank").rglob("*.xml")):
        report, _ = status_report(path.read_bytes(), reject_share=0.1, seed=4)
        with Session(engine) as session, session.begin():
            apply_report(session, read_report(report), source=path.name, data=report, at=AT)
    return root, url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def api_server(
    answered_ledger: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """``airflow api-server`` with our plugins; yields (base URL, finance's password)."""
    require_browser()
    home = tmp_path_factory.mktemp("ui-airflow")
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"finance": "finance-pw"}))
    root, url = answered_ledger
    port = _free_port()
    env = os.environ | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "finance:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "PAYMENTS_DATA_DIR": str(root),
        "PAYMENTS_LEDGER_URL": url,
    }
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    log = (home / "api-server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "airflow", "api-server", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(base + "/api/v2/monitor/health", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None:
                    break
                time.sleep(1)
        else:
            pytest.fail(
                "api-server did not start: " + (home / "api-server.log").read_text()[-3000:]
            )
        if server.poll() is not None:
            pytest.fail("api-server exited: " + (home / "api-server.log").read_text()[-3000:])
        yield base, "finance-pw"
    finally:
        server.terminate()
        server.wait(timeout=30)


def signer_certificate(root: Path):  # type: ignore[no-untyped-def]
    from payments.sepa.signing import load_certificate

    return load_certificate(root / "secrets" / "signing-cert.pem")


def _token(base: str, password: str) -> str:
    request = urllib.request.Request(
        base + "/auth/token",
        data=json.dumps({"username": "finance", "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["access_token"])


def _ledger_cents(url: str, state: str) -> int:
    with Session(engine_for(url)) as session:
        return int(
            session.execute(
                select(func.coalesce(func.sum(Payment.amount_cents), 0)).where(
                    Payment.state == state
                )
            ).scalar_one()
        )


def test_reconciliation_page_in_a_real_browser(
    api_server: tuple[str, str], answered_ledger: tuple[Path, str], tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    base, password = api_server
    _, url = answered_ledger

    # Not logged in: refused.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(base + "/payments/reconciliation", timeout=10)
    assert refused.value.code in (401, 403)

    token = _token(base, password)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = chrome(downloads)
    try:
        log_in(driver, base, token)
        driver.get(base + "/payments/reconciliation")
        assert driver.title == "Reconciliation"
        shown = {
            state: driver.find_element(By.ID, f"total-{state}").text
            for state in ("sent", "accepted", "rejected")
        }
        assert shown["accepted"] == euros(_ledger_cents(url, "accepted"))
        assert shown["rejected"] == euros(_ledger_cents(url, "rejected"))
        assert _ledger_cents(url, "rejected") > 0
        held_rows = driver.find_elements(By.CSS_SELECTOR, "#held tbody tr")
        rejection_rows = driver.find_elements(By.CSS_SELECTOR, "#rejections tbody tr")
        assert rejection_rows and len(held_rows) >= 0
        assert driver.find_elements(By.CSS_SELECTOR, "svg[role=img]")
        states = driver.find_elements(By.CSS_SELECTOR, "#chart-states svg rect")
        assert len(states) == 6  # held, sent, accepted, rejected, returned, cancelled
        page = driver.page_source
        assert "FR76" not in page  # no IBAN on the page

        reissue_rows = driver.find_elements(By.CSS_SELECTOR, "#reissue tbody tr")
        with Session(engine_for(url)) as session:
            rejected_count = session.execute(
                select(func.count()).where(Payment.state == "rejected")
            ).scalar_one()
        assert len(reissue_rows) == rejected_count > 0
        ties = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#by-run-fund td.tie")]
        assert ties and set(ties) == {"✓"}

        driver.find_element(By.ID, "download-csv").click()
        text = downloaded(downloads, "reconciliation.csv").read_text()

        driver.find_element(By.CSS_SELECTOR, "a.bundle").click()
        from payments.bundle import check_bundle

        bundle = downloaded(downloads, "*-audit.zip")
        assert check_bundle(bundle, signer_certificate(answered_ledger[0])) == []
    finally:
        driver.quit()
    header, *rows = text.strip().splitlines()
    columns = header.replace('"', "").split(";")
    accepted = sum(
        int(dict(zip(columns, r.replace('"', "").split(";"), strict=True))["accepted_cents"])
        for r in rows
    )
    assert accepted == _ledger_cents(url, "accepted")


def test_the_pages_are_linked_from_the_airflow_navigation(api_server: tuple[str, str]) -> None:
    base, password = api_server
    request = urllib.request.Request(
        base + "/api/v2/plugins", headers={"Authorization": f"Bearer {_token(base, password)}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        plugins = json.load(response)["plugins"]
    ours = next(p for p in plugins if p["name"] == "solidarity_payments_ui")
    hrefs = {view["href"] for view in ours["external_views"]}
    assert hrefs == {
        f"/payments/{page}"
        for page in ("runs", "holds", "quarantine", "bank", "reconciliation", "audit")
    }


def test_each_run_and_fund_ties_out_and_a_broken_line_is_shown(
    answered_ledger: tuple[Path, str], tmp_path: Path
) -> None:
    from payments.ui.reconciliation import load as load_page
    from payments.ui.reconciliation import render, tie_out

    root, _ = answered_ledger
    copy = tmp_path / "ledger.sqlite"
    shutil.copy(root / "ledger.sqlite", copy)
    engine = engine_for(f"sqlite:///{copy}")
    lines = tie_out(engine)
    assert {r["fund_code"] for r in lines} == {"01", "75"}
    assert all(r["ties_out"] for r in lines)
    assert "✗" not in render(load_page(engine))
    # A payment at the bank whose amount was changed in the ledger no longer ties out.
    with engine.begin() as c:
        c.exec_driver_sql(
            "UPDATE payments SET amount_cents = amount_cents + 100, "
            "child_cents = child_cents + 100 "
            "WHERE id = (SELECT MIN(id) FROM payments WHERE state = 'accepted')"
        )
    broken = [r for r in tie_out(engine) if not r["ties_out"]]
    assert len(broken) == 1
    assert "✗ does not tie out" in render(load_page(engine))
