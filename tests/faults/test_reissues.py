"""Finance sees every payment it approves, re-issues and released holds included, and who
caused them; and who caused them does not approve the run that pays them.

N7 of the second review: after one "rejecting" report uploaded by a finance
user, the next run carried 35 attempt-2 payments that neither the approval text
nor the run page counted; the same finance user approved that run.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from payments.errors import FourEyesError
from payments.ledger.approval import causes, facts, released_waiting
from payments.ledger.holds import release_hold
from payments.ledger.migrate import engine_for
from payments.ledger.models import Hold, Payment
from payments.orchestration.finance_actions import UPLOADED, act
from payments.orchestration.summary import approval_text_of
from payments.release import approve
from payments.sepa.signing import Signer
from tests.bank_simulator import sent_batch, status_report
from tests.faults.runs import run, sample
from tests.households import APPROVERS
from tests.vouchers import signing_key, voucher

AT = datetime(2020, 5, 14, 9)


def _shown(engine, run_id: str) -> str:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        figures = facts(session, run_id)
        why = causes(session, run_id)
        waiting = released_waiting(session, figures["scheme_id"])
    return approval_text_of(figures, why, waiting, "0" * 64)


def test_reissues_and_released_holds_are_shown_and_their_authors_do_not_approve(
    tmp_path: Path, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    for name, value in {
        "PAYMENTS_DATA_DIR": str(tmp_path),
        "PAYMENTS_LEDGER_URL": url,
        "PAYMENTS_FINANCE_APPROVERS": ",".join(APPROVERS),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PAYMENTS_DEMO", raising=False)
    signing_key(tmp_path)
    engine = engine_for(url)
    bank = sent_batch(engine, tmp_path, signer, ("13",), seed=8, at=AT)

    # finance uploads a report "rejecting" paid payments, through the Bank page's action
    sent = next(p for p in bank.rglob("*.xml") if not p.name.startswith("STS-"))
    report, rejected = status_report(sent.read_bytes(), reject_share=0.2, seed=3)
    assert rejected
    key = f"{UPLOADED}/0001-sts.xml"
    (tmp_path / UPLOADED).mkdir(parents=True)
    (tmp_path / key).write_bytes(report)
    conf = {"action": "apply_report", "report": key}
    conf["voucher"] = voucher(tmp_path, "finance", "apply_report", {"report": key})
    assert act(conf, triggered_as="finance")["applied"] == 1

    # bob releases a hold of the next run; the next run pays the re-issues and the release
    sample(tmp_path, ("75",), seed=4)
    first = run(engine, tmp_path, signer, ("13", "75"))
    with Session(engine) as session, session.begin():
        held = (
            session.execute(
                select(Payment.id).where(Payment.run_id == first.run_id, Payment.state == "held")
            )
            .scalars()
            .first()
        )
        assert held is not None
        release_hold(session, held, by="bob", note="checked", at=AT, approvers=APPROVERS)
    text = _shown(engine, first.run_id)
    sample(tmp_path, ("2A",), seed=5)
    second = run(engine, tmp_path, signer, ("13", "75", "2A"))

    assert f"**Paid again** (re-issues, included above): {len(rejected):,} payments" in text
    assert "earlier payment rejected by the bank" in text and "caused by finance" in text
    assert "Holds released and waiting for their fund's next run: 1" in text
    assert "Payment date (execution date in the files): **2020-05-15**" in text
    assert "held when made within 30 days of **2020-05-15** or after it" in text

    with pytest.raises(FourEyesError, match="finance caused re-issues"):
        approve(engine, first.out_dir, first.run_id, by="finance", at=AT, approvers=APPROVERS)
    approve(engine, first.out_dir, first.run_id, by="bob", at=AT, approvers=APPROVERS)

    shown = _shown(engine, second.run_id)
    assert "**Released holds** paid by this run (included above): 1 payments" in shown
    assert "released by bob" in shown
    with pytest.raises(FourEyesError, match="bob released a hold"):
        approve(engine, second.out_dir, second.run_id, by="bob", at=AT, approvers=APPROVERS)
    approve(engine, second.out_dir, second.run_id, by="finance", at=AT, approvers=APPROVERS)
    with Session(engine) as session:
        adopted = session.execute(
            select(Payment.run_id, Payment.state)
            .join(Hold, Hold.payment_id == Payment.id)
            .where(Hold.released_by == "bob")
        ).one()
    assert tuple(adopted) == (second.run_id, "in_file")
