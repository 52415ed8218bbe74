"""What finance decides on the pages is applied only with the page's voucher, once.

Anyone allowed to trigger DAGs can trigger ``solidarity_finance_action`` with
any conf, and the Airflow CLI records ``$LOGNAME`` as the triggering user. The
task acts only on a voucher the API server signed for the authenticated user,
this action and these parameters; it checks the role and four eyes, and spends
the voucher in the ledger with the act.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from payments.clock import utc_now
from payments.errors import PaymentsError
from payments.identity import Identity, generate_pair
from payments.ledger.migrate import engine_for
from payments.ledger.models import Hold
from payments.orchestration.finance_actions import UPLOADED, act, subject
from payments.sepa.signing import Signer
from tests.vouchers import signing_key, voucher


@pytest.fixture
def held(tmp_path: Path, signer: Signer, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int]:
    from tests.bank_simulator import sent_batch

    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PAYMENTS_LEDGER_URL", url)
    monkeypatch.setenv("PAYMENTS_FINANCE_APPROVERS", "finance,operator,4=bob")
    monkeypatch.delenv("PAYMENTS_DEMO", raising=False)
    signing_key(tmp_path)  # the API server's identity key (the tests sign as the pages do)
    sent_batch(engine_for(url), tmp_path, signer, ("13",), seed=8, at=datetime(2020, 5, 14))
    with Session(engine_for(url)) as session:
        return url, int(session.execute(select(Hold.payment_id).limit(1)).scalar_one())


def _released_by(url: str, payment_id: int) -> str | None:
    with Session(engine_for(url)) as session:
        hold = session.execute(select(Hold).where(Hold.payment_id == payment_id)).scalar_one()
        return hold.released_by


def _release(tmp_path: Path, payment_id: int, user: str | Identity, **extra: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {"action": "release_hold", "payment_id": payment_id, "note": "ok"}
    conf["voucher"] = voucher(tmp_path, user, "release_hold", subject("release_hold", conf))
    return {**conf, **extra}


def test_logname_finance_on_the_cli_releases_nothing(held, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """N3: ``LOGNAME=finance airflow dags trigger solidarity_finance_action -c {...}`` released
    a fraud hold "by finance": the task took the triggering user's name as finance's."""
    url, payment_id = held
    forged = {"action": "release_hold", "payment_id": payment_id, "note": "checked"}
    with pytest.raises(PaymentsError, match="no voucher from the payments pages"):
        act(forged, triggered_as="finance")  # what the CLI records from $LOGNAME
    # a voucher copied from another run's conf (readable by every DAG reader) for another
    # hold does not fit this one
    other = _release(tmp_path, payment_id + 1, "finance")
    with pytest.raises(PaymentsError, match="not for what this run asks"):
        act({**forged, "note": "ok", "voucher": other["voucher"]}, triggered_as="finance")
    # a voucher the operator signed with a key of their own
    rogue = tmp_path / "rogue"
    generate_pair(rogue / "k.pem", rogue / "k.pub")
    with pytest.raises(PaymentsError, match="not one the payments pages signed"):
        act(_release(rogue, payment_id, "finance"), triggered_as="finance")
    assert _released_by(url, payment_id) is None


def test_a_voucher_serves_its_user_once_and_in_time(held, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, payment_id = held
    conf = _release(tmp_path, payment_id, "finance")
    with pytest.raises(PaymentsError, match="the run was triggered as 'operator'"):
        act(conf, triggered_as="operator")
    old = {"action": "release_hold", "payment_id": payment_id, "note": "ok"}
    old["voucher"] = voucher(
        tmp_path, "finance", "release_hold", subject("release_hold", old),
        at=utc_now() - timedelta(hours=1),
    )  # fmt: skip
    with pytest.raises(PaymentsError, match="not now"):
        act(old, triggered_as="finance")
    assert act(conf, triggered_as="finance") == {"released": payment_id, "by": "finance"}
    assert _released_by(url, payment_id) == "finance"
    with pytest.raises(PaymentsError, match="used already"):
        act(conf, triggered_as="finance")  # the same conf again: once


def test_the_user_who_triggered_the_payments_run_cannot_release_its_hold(held, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url, payment_id = held
    with pytest.raises(PaymentsError, match="four eyes"):
        # listed as an approver, but triggered the run
        act(_release(tmp_path, payment_id, "operator"), triggered_as="operator")
    with pytest.raises(PaymentsError, match="not a finance approver"):
        act(_release(tmp_path, payment_id, "auditor"), triggered_as="auditor")
    # ids and names: id 4 is bob; a voucher naming id 4 as someone else is refused
    with pytest.raises(PaymentsError, match="ids and names do not match"):
        act(_release(tmp_path, payment_id, Identity("4", "mallory")), triggered_as="mallory")
    assert _released_by(url, payment_id) is None
    assert act(_release(tmp_path, payment_id, Identity("4", "bob")), triggered_as="bob") == {
        "released": payment_id,
        "by": "4",
    }


def test_the_operator_cannot_apply_a_report(held, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """N10: apply_report checked no role: the operator applied a report and the event log
    said it was uploaded by the operator, through a path meant for finance only."""
    url, _ = held
    key = f"{UPLOADED}/0123-op.xml"
    (tmp_path / UPLOADED).mkdir(parents=True)
    (tmp_path / key).write_bytes(b"<Document/>")
    conf = {"action": "apply_report", "report": key}
    with pytest.raises(PaymentsError, match="no voucher"):
        act(conf, triggered_as="operator")
    with pytest.raises(PaymentsError, match="not a finance approver"):
        vouched = voucher(tmp_path, "auditor", "apply_report", {"report": key})
        act({**conf, "voucher": vouched}, triggered_as="auditor")
    with engine_for(url).connect() as c:
        uploads = c.execute(
            text("SELECT COUNT(*) FROM event_log WHERE kind = 'bank_report_uploaded'")
        ).scalar_one()
    assert uploads == 0


def test_only_an_uploaded_report_is_applied(held, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for key in ("runs/x/run.json", "bank-reports/uploaded/../x"):
        conf = {"action": "apply_report", "report": key}
        conf["voucher"] = voucher(tmp_path, "finance", "apply_report", {"report": key})
        with pytest.raises(PaymentsError, match="not an uploaded report"):
            act(conf, triggered_as="finance")
