"""What finance decides on the pages is applied in the triggering user's name, four eyes again.

Anyone allowed to trigger DAGs (an operator) can trigger
``solidarity_finance_action`` with any conf; the author is the user Airflow
recorded as the trigger, and the task refuses what four eyes refuse.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from payments.errors import PaymentsError
from payments.ledger.migrate import engine_for
from payments.ledger.models import Hold
from payments.orchestration.finance_actions import act
from payments.sepa.signing import Signer


@pytest.fixture
def held(tmp_path: Path, signer: Signer, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int]:
    from tests.bank_simulator import sent_batch

    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PAYMENTS_LEDGER_URL", url)
    monkeypatch.setenv("PAYMENTS_FINANCE_APPROVERS", "finance,operator")
    sent_batch(engine_for(url), tmp_path, signer, ("13",), seed=8, at=datetime(2020, 5, 14))
    with Session(engine_for(url)) as session:
        return url, int(session.execute(select(Hold.payment_id).limit(1)).scalar_one())


def _released_by(url: str, payment_id: int) -> str | None:
    with Session(engine_for(url)) as session:
        hold = session.execute(select(Hold).where(Hold.payment_id == payment_id)).scalar_one()
        return hold.released_by


def test_the_user_who_triggered_the_payments_run_cannot_release_its_hold(held) -> None:  # type: ignore[no-untyped-def]
    url, payment_id = held
    release = {"action": "release_hold", "payment_id": payment_id, "note": "ok"}
    with pytest.raises(PaymentsError, match="four eyes"):
        act(release, by="operator")  # listed as an approver, but triggered the run
    with pytest.raises(PaymentsError, match="names no user"):
        act(release, by=None)
    assert _released_by(url, payment_id) is None
    assert act(release, by="finance") == {"released": payment_id, "by": "finance"}
    assert _released_by(url, payment_id) == "finance"
    with pytest.raises(PaymentsError):
        act(release, by="finance")  # once


def test_only_an_uploaded_report_is_applied(held) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PaymentsError, match="not an uploaded report"):
        act({"action": "apply_report", "report": "runs/x/run.json"}, by="finance")
    with pytest.raises(PaymentsError, match="not an uploaded report"):
        act({"action": "apply_report", "report": "bank-reports/uploaded/../x"}, by="finance")
