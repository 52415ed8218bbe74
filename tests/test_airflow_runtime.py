"""The payment batch under Airflow's real runtime, then each user's job on the payments pages.

The scheduler (LocalExecutor) forks the task processes, the DAG processor
parses dags/, the API server mounts the plugin and answers the users, the
triggerer waits on finance's approval. ``operator`` triggers the run,
``finance`` approves it through the human-in-the-loop API; the files must
then be at the (local) bank, verified, and the ledger must tie out.

Then, in a real headless browser against that run (Airflow still up):
finance reads the run's budget, releases a hold, uploads a bank report and
reads the reconciliation; the operator reads the quarantine and downloads a
fund's masked CSV; the auditor verifies the ledger and replays the run from
the Audit page (each a run of the audit DAG on the real scheduler) and
downloads the audit bundle.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import create_engine, text

from bench.airflow_runtime import Airflow, running_airflow, unpause, wait_for, wait_parsed
from payments.logs import IBAN_PATTERN, NIR_PATTERN
from payments.money import euros
from payments.sample.writer import SampleSpec, write_sample
from payments.sepa.signing import load_certificate, signer_paths
from payments.sepa.verify import verify_batch
from tests.browser import (
    CHROMEDRIVER,
    CHROMIUM,
    appears,
    chrome,
    downloaded,
    log_in,
    require_browser,
    shot,
    wait_until,
)
from tests.conftest import MAY_2020

DAG = "solidarity_payment_batch"
#: Seconds between the approval pausing and finance answering (see where it is used).
APPROVAL_PAUSE_S = 10
#: With defects, the sample sends two funds' files broken (one not UTF-8, one truncated).
FUNDS = ["13", "2A", "59", "69", "75"]
#: Generous: two cores, a cold start of every component, each task a process.
RUN_TIMEOUT = 900


def _task_states(airflow: Airflow, run_id: str) -> dict[str, list[str]]:
    with airflow.client("operator") as api:
        answer = api.get(f"/dags/{DAG}/dagRuns/{run_id}/taskInstances", params={"limit": 500})
        answer.raise_for_status()
    states: dict[str, list[str]] = {}
    for ti in answer.json()["task_instances"]:
        states.setdefault(ti["task_id"], []).append(str(ti["state"]))
    return states


def _run_state(airflow: Airflow, run_id: str) -> str | None:
    with airflow.client("operator") as api:
        answer = api.get(f"/dags/{DAG}/dagRuns/{run_id}")
        answer.raise_for_status()
    state = str(answer.json()["state"])
    return state if state in ("success", "failed") else None


def _xcom(airflow: Airflow, run_id: str, task_id: str) -> Any:
    with airflow.client("operator") as api:
        answer = api.get(
            f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
            params={"deserialize": True, "stringify": False},
        )
        answer.raise_for_status()
    return answer.json()["value"]


@dataclass
class PaidRun:
    """A run triggered by operator and approved by finance, with Airflow still running."""

    airflow: Airflow
    data: Path
    run_id: str
    state: str
    states: dict[str, list[str]]
    report: dict[str, Any]
    summary: dict[str, Any]
    #: What finance's browser read on the run's page while the approval waited (None
    #: without a browser): the state line, the approval link, the amount to pay.
    waiting_page: dict[str, str] | None


@pytest.fixture(scope="module")
def paid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PaidRun]:
    tmp_path = tmp_path_factory.mktemp("runtime")
    data = tmp_path / "data"
    spec = SampleSpec(
        households=900, seed=31, window=MAY_2020, funds=tuple(FUNDS), defect_rate=0.02
    )
    write_sample(spec, data)
    extra = {
        "PAYMENTS_DEMO": "1",
        "PAYMENTS_FINANCE_APPROVERS": "finance",
        "PAYMENTS_AUDITORS": "auditor",
        "PAYMENTS_OPERATORS": "operator",
    }
    with running_airflow(tmp_path / "airflow", data, extra) as airflow:
        yield _pay(airflow, data)


def _pay(airflow: Airflow, data: Path) -> PaidRun:
    """Trigger as operator, approve as finance, wait for the end."""
    wait_parsed(airflow, DAG)
    if CHROMIUM and CHROMEDRIVER:
        run_id = _trigger_in_the_form(airflow)
    else:
        unpause(airflow, DAG)
        with airflow.client("operator") as api:
            answer = api.post(
                f"/dags/{DAG}/dagRuns",
                json={"logical_date": None, "conf": {"scheme_id": "aes-2020-05", "funds": FUNDS}},
            )
            assert answer.status_code == 200, answer.text
            run_id = answer.json()["dag_run_id"]

    def approval_waiting() -> bool:
        states = _task_states(airflow, run_id)
        if any("failed" in s for s in states.values()) or _run_state(airflow, run_id):
            raise AssertionError(f"run ended before approval: {states}\n{airflow.logs()}")
        return states.get("approval") in (["deferred"], ["awaiting_input"])

    wait_for(approval_waiting, timeout=RUN_TIMEOUT, what="the approval", airflow=airflow)
    # Answered at once, the response can reach the scheduler before the pausing
    # task process's own exit is reported, and the scheduler then marks the
    # resumed task failed (executor state mismatch). A person takes longer.
    time.sleep(APPROVAL_PAUSE_S)
    path = f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/approval/-1/hitlDetails"
    with airflow.client("operator") as api:  # four eyes: the one who triggered may not
        refused = api.patch(path, json={"chosen_options": ["Approve"]})
    assert refused.status_code == 403, refused.text
    payments_run = _xcom(airflow, run_id, "conclude")["run_id"]
    waiting_page = None
    if CHROMIUM and CHROMEDRIVER:
        waiting_page = _approve_on_the_run_page(airflow, payments_run)
    else:
        with airflow.client("finance") as api:
            answer = api.patch(path, json={"chosen_options": ["Approve"]})
        assert answer.status_code == 200, answer.text
    with airflow.client("operator") as api:
        answered = api.get(path).json()
    assert answered["responded_by_user"]["name"] == "finance", answered
    assert answered["chosen_options"] == ["Approve"]

    state = wait_for(
        lambda: _run_state(airflow, run_id),
        timeout=RUN_TIMEOUT,
        what="the run to end",
        airflow=airflow,
    )
    return PaidRun(
        airflow,
        data,
        run_id,
        state,
        _task_states(airflow, run_id),
        _xcom(airflow, run_id, "report"),
        _xcom(airflow, run_id, "conclude"),
        waiting_page,
    )


def _trigger_in_the_form(airflow: Airflow) -> str:
    """The operator triggers the batch in Airflow's own trigger form: the funds picked from
    the registry's list by code, the scheme left at its default, "Unpause on trigger" on."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = chrome(airflow.home, width=1400, height=1100)
    try:
        log_in(driver, airflow.url, airflow.token("operator"))
        driver.get(f"{airflow.url}/dags/{DAG}")
        trigger = "//button[normalize-space()='Trigger']"
        wait_until(lambda: driver.find_elements(By.XPATH, trigger), what="the DAG page")
        driver.find_element(By.XPATH, trigger).click()
        wait_until(lambda: _comboboxes(driver), what="the trigger form")
        form = driver.page_source
        _scheme, funds = _comboboxes(driver)
        for code in FUNDS:
            funds.send_keys(code)
            wait_until(
                lambda: driver.find_elements(By.CSS_SELECTOR, "[role=option]"),
                what=f"fund {code} offered",
            )
            funds.send_keys(Keys.ENTER)
        shot(driver, "operator-trigger")
        driver.find_elements(By.XPATH, trigger)[-1].click()  # the form's own button
        url = wait_until(
            lambda: "/runs/" in driver.current_url and driver.current_url,
            what="the run's page after the trigger",
        )
    finally:
        driver.quit()
    # The form as the review asked: funds neither required nor free text, schemes titled.
    assert "aes-2020-05: Aide exceptionnelle de solidarité" in form
    assert "Select one or multiple values" in form and "Empty: every fund" in form
    return unquote(str(url).rsplit("/runs/", 1)[1].split("/")[0])


def _comboboxes(driver: Any) -> list[Any]:
    from selenium.webdriver.common.by import By

    boxes = driver.find_elements(By.CSS_SELECTOR, "input[role=combobox]")
    return list(boxes) if len(boxes) == 2 else []


def _approve_on_the_run_page(airflow: Airflow, run_id: str) -> dict[str, str]:
    """Finance reads the waiting run's page, then approves there, through the confirmation
    step; what the page showed is returned for the tests to check."""
    from selenium.webdriver.common.by import By

    driver = chrome(airflow.home)
    try:
        log_in(driver, airflow.url, airflow.token("finance"))
        driver.get(f"{airflow.url}/payments/runs/{run_id}")
        seen = {
            "state": driver.find_element(By.ID, "state").text,
            "link": str(driver.find_element(By.ID, "approval-link").get_attribute("href")),
            "to_pay": driver.find_element(By.ID, "to-pay").text,
        }
        shot(driver, "finance-run-waiting")
        driver.find_element(By.CSS_SELECTOR, "#decide a.approve").click()
        seen["confirm"] = appears(driver, By.ID, "confirm-text").text
        shot(driver, "finance-confirm")
        driver.find_element(By.CSS_SELECTOR, "#confirm button").click()
        seen["notice"] = appears(driver, By.ID, "notice").text
        return seen
    finally:
        driver.quit()


def test_operator_triggers_finance_approves_files_reach_the_bank(paid: PaidRun) -> None:
    data, states, report, summary = paid.data, paid.states, paid.report, paid.summary
    assert paid.state == "success", f"{states}\n{paid.airflow.logs()}"
    with paid.airflow.client("operator") as api:
        conf = api.get(f"/dags/{DAG}/dagRuns/{paid.run_id}").json()["conf"]
    assert conf["funds"] == FUNDS and conf["scheme_id"] == "aes-2020-05", conf
    # The two broken files are skipped receives (never green), the others paid.
    assert sorted(states["receive"]) == ["skipped"] * 2 + ["success"] * 3
    assert len(summary["not_received"]) == 2 and len(summary["funds_with_files"]) == 3
    assert set(states["deliver"]) == {"success"}
    assert report["sent_ties_out"] is True, report
    assert summary["triggered_by"] == "operator"
    # the files at the bank are those of the batch, byte for byte, and verify
    batch = data / summary["run_dir"] / "payments"
    manifest = json.loads((batch / "manifest.json").read_text())
    trusted = load_certificate(signer_paths(data)[1])
    assert verify_batch(batch, trusted) == []
    for f in manifest["files"]:
        at_bank = data / "bank" / f["fund_code"] / Path(f["path"]).name
        assert hashlib.sha256(at_bank.read_bytes()).hexdigest() == f["sha256"], at_bank
    # the ledger: every payment of the files sent, approved by finance
    ledger = create_engine(f"sqlite:///{data / 'ledger.sqlite'}")
    with ledger.connect() as c:
        sent = c.execute(
            text("SELECT COUNT(*), SUM(amount_cents) FROM payments WHERE state = 'sent'")
        ).one()
        approved_by = c.execute(
            text("SELECT approved_by FROM runs WHERE run_id = :r"), {"r": summary["run_id"]}
        ).scalar_one()
    ledger.dispose()
    assert tuple(sent) == (manifest["totals"]["nb_of_txs"], manifest["totals"]["ctrl_sum_cents"])
    assert approved_by == "finance"


def test_the_reconciliation_runs_by_itself_once_files_reach_the_bank(paid: PaidRun) -> None:
    """Under `make airflow` (new DAGs paused, as in `airflow standalone`) the reconciliation
    and bank-inbox DAGs stayed paused and never ran (UI walkthrough 4.4)."""

    def reconciled() -> list[Any]:
        with paid.airflow.client("operator") as api:
            answer = api.get("/dags/solidarity_reconciliation/dagRuns")
        answer.raise_for_status()
        runs = answer.json()["dag_runs"]
        if any(r["state"] == "failed" for r in runs):
            raise AssertionError(f"reconciliation failed: {runs}\n{paid.airflow.logs()}")
        return [r for r in runs if r["state"] == "success"]

    runs = wait_for(reconciled, timeout=600, what="the reconciliation", airflow=paid.airflow)
    assert runs[0]["run_type"] == "asset_triggered"
    with paid.airflow.client("operator") as api:
        paused = {
            dag: api.get(f"/dags/{dag}").json()["is_paused"]
            for dag in ("solidarity_reconciliation", "solidarity_bank_inbox", "solidarity_audit")
        }
    assert paused == dict.fromkeys(paused, False)
    # The inbox watch ran when it was unpaused, found no report and announced none: the
    # reconciliation ran for the files reaching the bank, not for an empty inbox.
    with paid.airflow.client("operator") as api:
        watches = api.get("/dags/solidarity_bank_inbox/dagRuns").json()["dag_runs"]
        events = api.get(
            "/assets/events", params={"source_dag_id": "solidarity_bank_inbox"}
        ).json()["asset_events"]
    assert [w["state"] for w in watches][:1] == ["success"] and events == [], (watches, events)
    by_fund = (paid.data / "reconciliation" / "by_fund.csv").read_text()
    assert len(by_fund.strip().splitlines()) == len(paid.summary["funds_with_files"]) + 1


# --- each user's job on the payments pages, in a real browser, against that run ---------


def _ledger(data: Path, query: str, **params: Any) -> list[Any]:
    engine = create_engine(f"sqlite:///{data / 'ledger.sqlite'}")
    try:
        with engine.connect() as c:
            return list(c.execute(text(query), params).all())
    finally:
        engine.dispose()


def _browser_as(paid: PaidRun, user: str, downloads: Path) -> Any:
    driver = chrome(downloads)
    log_in(driver, paid.airflow.url, paid.airflow.token(user))
    return driver


def test_finance_reads_the_waiting_runs_budget_and_approves_it_with_a_confirmation(
    paid: PaidRun,
) -> None:
    require_browser()
    assert paid.waiting_page is not None
    assert "waiting for finance" in paid.waiting_page["state"]
    assert paid.waiting_page["link"].endswith("/required_actions?response_received=false")
    assert euros(paid.summary["national"]["payable_cents"]) in paid.waiting_page["to_pay"]
    files = paid.summary["payment_files"]
    assert paid.waiting_page["confirm"] == (
        f"Approve run {paid.summary['run_id']}: send {files['payments']:,} payments, "
        f"{euros(files['cents'])} in {files['files']} signed files to the bank."
    )
    assert "Your answer (Approve) was given" in paid.waiting_page["notice"]


def test_finance_reads_the_budget_and_releases_a_hold(paid: PaidRun, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    base = paid.airflow.url + "/payments"
    run_id = paid.summary["run_id"]
    payable = paid.summary["national"]["payable_cents"]
    driver = _browser_as(paid, "finance", tmp_path)
    try:
        driver.get(base + "/runs")
        driver.find_element(By.LINK_TEXT, run_id).click()
        assert euros(payable) in appears(driver, By.ID, "to-pay").text
        assert "approved by finance" in driver.find_element(By.ID, "state").text
        assert driver.find_elements(By.CSS_SELECTOR, "#chart-outcome svg[role=img]")
        shot(driver, "finance-run")

        driver.get(base + "/holds")
        reason = Select(driver.find_element(By.ID, "filter-reason"))
        chosen = reason.options[1].get_attribute("value")  # the first reason the ledger has
        reason.select_by_value(chosen)
        driver.find_element(By.CSS_SELECTOR, "#filters button").click()
        # The click loads the filtered page: read its rows once it is there, not the last one's.
        rows = wait_until(
            lambda: (
                "reason=" in driver.current_url
                and driver.execute_script("return document.readyState") == "complete"
                and driver.find_elements(By.CSS_SELECTOR, "#holds tbody tr")
            ),
            what="the filtered holds",
        )
        assert all(chosen in r.text for r in rows)
        (count,) = _ledger(
            paid.data,
            "SELECT COUNT(*) FROM holds WHERE released_at IS NULL AND reasons LIKE :r",
            r=f"%{chosen}%",
        )[0]
        assert driver.find_element(By.ID, "selection").text.startswith(f"{count:,} holds")
        shot(driver, "finance-holds")

        household = rows[0].find_element(By.TAG_NAME, "a")
        household_id = household.text
        household.click()
        page = wait_until(
            lambda: "Bank details changed on" in driver.page_source and driver.page_source,
            what="the hold's facts",
        )
        assert "Bank details changed on" in page and "IBAN (masked)" in page
        assert not IBAN_PATTERN.search(page) and not NIR_PATTERN.search(page)
        driver.find_element(By.ID, "note").send_keys("called the fund: the new IBAN is hers")
        shot(driver, "finance-hold")
        driver.find_element(By.CSS_SELECTOR, "#release button").click()
        assert "Release asked" in appears(driver, By.ID, "asked").text
        # Applied by a finance-action run in finance's name (the web server reads only).
        wait_for(
            lambda: _ledger(
                paid.data,
                "SELECT 1 FROM holds h JOIN payments p ON p.id = h.payment_id "
                "WHERE p.household_id = :h AND h.released_at IS NOT NULL",
                h=household_id,
            ),
            timeout=300,
            what="the release to be applied",
            airflow=paid.airflow,
        )
        driver.refresh()
        assert "Released by finance" in driver.find_element(By.ID, "released").text
    finally:
        driver.quit()
    released = _ledger(
        paid.data,
        "SELECT h.released_by, h.release_note, p.state FROM holds h "
        "JOIN payments p ON p.id = h.payment_id WHERE p.household_id = :h",
        h=household_id,
    )
    assert released == [("finance", "called the fund: the new IBAN is hers", "computed")]


def test_finance_applies_a_bank_report_and_reads_the_reconciliation(
    paid: PaidRun, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    from tests.bank_simulator import status_report

    sent = sorted((paid.data / "bank").rglob("*.xml"))[0]
    report, rejected = status_report(sent.read_bytes(), reject_share=0.3, seed=7)
    assert rejected
    upload = tmp_path / "upload" / "pain002-from-the-portal.xml"
    upload.parent.mkdir()
    upload.write_bytes(report)
    base = paid.airflow.url + "/payments"
    driver = _browser_as(paid, "finance", tmp_path)
    try:
        driver.get(base + "/bank")
        driver.find_element(By.ID, "report-file").send_keys(str(upload))
        driver.find_element(By.CSS_SELECTOR, "#upload button").click()
        assert "applied" in _notice_once_applied(driver, paid, 1)
        # A file that is no report is quarantined with the reason; nothing in it moves.
        broken = upload.with_name("statement-export.xml")
        broken.write_bytes(b"<html>session expired</html>")
        driver.find_element(By.ID, "report-file").send_keys(str(broken))
        driver.find_element(By.CSS_SELECTOR, "#upload button").click()
        notice = _notice_once_applied(driver, paid, 2)
        assert "statement-export.xml: quarantined, nothing moved" in notice, notice
        shot(driver, "finance-bank")
        driver.get(base + "/reconciliation")
        (cents,) = _ledger(
            paid.data, "SELECT SUM(amount_cents) FROM payments WHERE state = 'rejected'"
        )[0]
        assert driver.find_element(By.ID, "total-rejected").text == euros(cents)
        shot(driver, "finance-reconciliation")
    finally:
        driver.quit()
    assert (
        len(rejected)
        == _ledger(paid.data, "SELECT COUNT(*) FROM payments WHERE state = 'rejected'")[0][0]
    )
    events = _ledger(paid.data, "SELECT payload FROM event_log WHERE kind = 'bank_report_uploaded'")
    assert len(events) == 2 and all('"by":"finance"' in e[0].replace(" ", "") for e in events)


def _notice_once_applied(driver: Any, paid: PaidRun, reports: int) -> str:
    """The Bank page's notice once the finance-action run has applied the upload."""
    from selenium.webdriver.common.by import By

    wait_for(
        lambda: _ledger(paid.data, "SELECT COUNT(*) FROM bank_reports")[0][0] == reports,
        timeout=300,
        what="the uploaded report to be applied",
        airflow=paid.airflow,
    )
    driver.refresh()
    return str(driver.find_element(By.ID, "notice").text)


def test_operator_reads_the_quarantine_but_not_the_holds(paid: PaidRun, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    base = paid.airflow.url + "/payments"
    quarantined = paid.summary["validation"]["quarantined"]
    assert quarantined > 0
    driver = _browser_as(paid, "operator", tmp_path)
    try:
        driver.get(base + "/quarantine")
        assert f"quarantined {quarantined:,}" in driver.find_element(By.ID, "totals").text
        shot(driver, "operator-quarantine")
        driver.find_element(By.CSS_SELECTOR, "a.csv").click()
        csv = downloaded(tmp_path, "*-quarantine.csv").read_text(encoding="utf-8-sig")
        driver.get(base + "/holds")
        refused = driver.page_source
    finally:
        driver.quit()
    lines = csv.strip().splitlines()
    assert lines[0].startswith('"line";"error_codes"') and len(lines) > 1
    assert not NIR_PATTERN.search(csv) and not IBAN_PATTERN.search(csv)
    assert "[NIR]" in csv
    assert "needs the auditor or finance role" in refused


def test_auditor_verifies_replays_and_downloads_the_bundle(paid: PaidRun, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from payments.bundle import check_bundle

    base = paid.airflow.url + "/payments"
    run_id = paid.summary["run_id"]
    driver = _browser_as(paid, "auditor", tmp_path)

    def result_of(check: str) -> str | None:
        driver.get(base + "/audit")
        for row in driver.find_elements(By.CSS_SELECTOR, "#results tbody tr"):
            cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
            if len(cells) > 4 and cells[1] == check:
                return cells[4]
        return None

    try:
        driver.get(base + "/audit")
        driver.find_element(By.CSS_SELECTOR, "#verify button").click()
        assert "Started" in appears(driver, By.ID, "notice").text
        verified = wait_for(
            lambda: result_of("verify"), timeout=300, what="the verification", airflow=paid.airflow
        )
        driver.get(base + "/audit")  # a page that has finished loading, not the poll's
        Select(appears(driver, By.ID, "replay-run")).select_by_value(run_id)
        driver.find_element(By.CSS_SELECTOR, "#replay button").click()
        assert "Started" in appears(driver, By.ID, "notice").text
        replayed = wait_for(
            lambda: result_of("replay"), timeout=600, what="the replay", airflow=paid.airflow
        )
        shot(driver, "auditor-audit")
        driver.find_element(By.CSS_SELECTOR, "a.bundle").click()
        bundle = downloaded(tmp_path, "*-audit.zip", timeout=60)
    finally:
        driver.quit()
    assert verified == "✓ intact" and replayed == "✓ intact", (verified, replayed)
    trusted = load_certificate(signer_paths(paid.data)[1])
    assert check_bundle(bundle, trusted) == []
    runs = _ledger(paid.data, "SELECT COUNT(*) FROM runs")[0][0]
    assert runs == 1  # the replay recorded nothing in the ledger


def test_a_dry_run_shows_its_budget_and_says_it_is_a_dry_run(paid: PaidRun, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    with paid.airflow.client("operator") as api:
        answer = api.post(
            f"/dags/{DAG}/dagRuns",
            json={
                "logical_date": None,
                "conf": {"scheme_id": "aes-2020-05", "funds": FUNDS, "dry_run": True},
            },
        )
    assert answer.status_code == 200, answer.text
    run_id = answer.json()["dag_run_id"]
    state = wait_for(
        lambda: _run_state(paid.airflow, run_id),
        timeout=RUN_TIMEOUT,
        what="the dry run to end",
        airflow=paid.airflow,
    )
    states = _task_states(paid.airflow, run_id)
    assert state == "success" and states["approval"] == ["skipped"], states
    summary = _xcom(paid.airflow, run_id, "conclude")
    report = _xcom(paid.airflow, run_id, "report")
    assert summary["dry_run"] is True and report["dry_run"] is True
    folder = summary["run_dir"].rsplit("/", 1)[-1]
    driver = _browser_as(paid, "operator", tmp_path)
    try:
        driver.get(paid.airflow.url + "/payments/runs")
        row = driver.find_element(By.XPATH, f"//a[text()='{folder}']/ancestor::tr")
        assert "dry run" in row.text
        driver.find_element(By.LINK_TEXT, folder).click()
        assert "dry run" in appears(driver, By.ID, "state").text
        payable = summary["national"]["payable_cents"]
        assert euros(payable) in appears(driver, By.ID, "to-pay").text
        assert not driver.find_elements(By.ID, "approval-link")
        shot(driver, "operator-dry-run")
    finally:
        driver.quit()
