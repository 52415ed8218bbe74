"""Nothing leaves without finance: a decision is final, four eyes hold, approval binds the files."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from payments.errors import Refused
from payments.ledger.holds import release_hold
from payments.ledger.models import Payment
from payments.release import approve, reject
from payments.sepa.signing import Signer
from tests.faults.runs import AT, reseal, run, sample, send_local, states
from tests.households import APPROVERS


def test_a_rejected_run_is_never_approved_nor_sent(
    ledger: Engine, tmp_path: Path, signer: Signer
) -> None:
    """H3: approve after reject flipped the decision, and its files went to the bank."""
    sample(tmp_path, ("13", "75"))
    result = run(ledger, tmp_path, signer, ("13", "75"))
    reject(ledger, result.run_id, by="finance", at=AT, approvers=APPROVERS)
    with pytest.raises(Refused, match="final"):
        approve(ledger, result.out_dir, result.run_id, by="bob", at=AT, approvers=APPROVERS)
    with pytest.raises(PermissionError, match="not approved"):
        send_local(ledger, result, tmp_path, signer)
    assert not (tmp_path / "bank").exists()
    with ledger.connect() as c:
        assert c.execute(text("SELECT decision FROM runs")).scalar_one() == "rejected"
    assert set(states(ledger)) <= {"cancelled", "held"}


def test_a_run_already_approved_cannot_be_rejected(
    ledger: Engine, tmp_path: Path, signer: Signer
) -> None:
    """UI walkthrough 4.3: rejecting a re-triggered, sent run rewrote the decision, no event."""
    sample(tmp_path, ("13",))
    result = run(ledger, tmp_path, signer, ("13",))
    approve(ledger, result.out_dir, result.run_id, by="finance", at=AT, approvers=APPROVERS)
    send_local(ledger, result, tmp_path, signer)
    with pytest.raises(Refused, match="already approved by finance"):
        reject(ledger, result.run_id, by="bob", at=AT, approvers=APPROVERS)
    with ledger.connect() as c:
        row = c.execute(text("SELECT decision, approved_by FROM runs")).one()
        kinds = c.execute(text("SELECT kind FROM event_log")).scalars().all()
    assert tuple(row) == ("approved", "finance")
    assert "run_rejected" not in kinds
    assert set(states(ledger)) <= {"sent", "held"}


def test_after_a_rejection_a_later_run_pays_the_households(
    ledger: Engine, tmp_path: Path, signer: Signer
) -> None:
    """H4: cancelled payments kept their claims, so no later run could pay those households."""
    sample(tmp_path, ("13", "75"))
    first = run(ledger, tmp_path, signer, ("13", "75"))
    reject(ledger, first.run_id, by="finance", at=AT, approvers=APPROVERS)
    with ledger.connect() as c:
        cancelled_13 = c.execute(
            text("SELECT COUNT(*) FROM payments WHERE state = 'cancelled' AND fund_code = '13'")
        ).scalar_one()
    assert cancelled_13
    later = run(ledger, tmp_path, signer, ("13",))  # fund 13 alone: another run id
    assert later.run_id != first.run_id
    assert later.payments is not None
    assert later.payments.manifest["totals"]["nb_of_txs"] == cancelled_13
    assert states(ledger, later.run_id).get("computed") == cancelled_13
    with ledger.connect() as c:
        attempts = (
            c.execute(
                text(
                    "SELECT DISTINCT attempt FROM payments WHERE run_id = :r AND state = 'computed'"
                ),
                {"r": later.run_id},
            )
            .scalars()
            .all()
        )
    assert attempts == [2], "a re-issue, under its own end-to-end id"
    approve(ledger, later.out_dir, later.run_id, by="finance", at=AT, approvers=APPROVERS)
    # the same inputs as the rejected run make the same run: refused, not silently empty
    with pytest.raises(Refused, match="rejected"):
        run(ledger, tmp_path, signer, ("13", "75"))


@pytest.mark.parametrize("by", ["operator ", "OPERATOR", "mallory", "", "  "])
def test_only_a_finance_approver_other_than_the_triggerer_decides(
    ledger: Engine, tmp_path: Path, signer: Signer, by: str
) -> None:
    """M2: --by was free text; "op2 " got past the triggerer check and was no approver."""
    sample(tmp_path, ("13",))
    result = run(ledger, tmp_path, signer, ("13",), triggered_by="operator")
    with pytest.raises(Refused):
        approve(ledger, result.out_dir, result.run_id, by=by, at=AT, approvers=APPROVERS)
    with pytest.raises(Refused):
        reject(ledger, result.run_id, by=by, at=AT, approvers=APPROVERS)
    with Session(ledger) as session, session.begin():
        held = session.execute(select(Payment.id).where(Payment.state == "held")).scalars().first()
        assert held is not None, "the sample holds a few payments"
        with pytest.raises(Refused):
            release_hold(session, held, by=by, note="n", at=AT, approvers=APPROVERS)
    with ledger.connect() as c:
        assert c.execute(text("SELECT decision FROM runs")).scalar_one() is None
    assert "in_file" not in states(ledger)


def test_an_approval_is_of_the_files_concluded(
    ledger: Engine, tmp_path: Path, signer: Signer
) -> None:
    """M6: a file altered after conclusion (IBAN redirected), re-signed with its manifest, was
    approved and sent."""
    sample(tmp_path, ("13",))
    result = run(ledger, tmp_path, signer, ("13",))
    batch = result.out_dir / "payments"
    target = next(batch.rglob("*-001.xml"))
    xml = target.read_text()
    iban = re.findall(r"<IBAN>([A-Z0-9]+)</IBAN>", xml)[1]
    xml = xml.replace(f"<IBAN>{iban}</IBAN>", "<IBAN>FR7630006000011234567890189</IBAN>", 1)
    target.write_bytes(xml.encode())
    (target.parent / (target.name + ".p7s")).write_bytes(signer.sign(xml.encode()))
    manifest = json.loads((batch / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["path"].endswith(target.name):
            entry["sha256"] = hashlib.sha256(xml.encode()).hexdigest()
            entry["bytes"] = len(xml.encode())
    data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    (batch / "manifest.json").write_bytes(data)
    (batch / "manifest.json.p7s").write_bytes(signer.sign(data))
    with pytest.raises(Refused, match="differ from those concluded"):
        approve(ledger, result.out_dir, result.run_id, by="finance", at=AT, approvers=APPROVERS)
    with ledger.connect() as c:
        assert c.execute(text("SELECT decision FROM runs")).scalar_one() is None


def test_what_a_fund_writes_is_shown_to_finance_as_text_not_markdown(
    tmp_path: Path, signer: Signer
) -> None:
    """L5: a fund's header cell or companion field was rendered as Markdown (links, images) in
    the approval text finance reads in the Required-actions page."""
    from payments.orchestration.summary import approval_text, run_summary
    from payments.pipeline import run_batch
    from payments.schemes import load_scheme
    from tests.households import SECRET

    sample(tmp_path, ("13", "75"))
    csv = tmp_path / "funds" / "75" / "75_aes-2020-05.csv"
    lines = csv.read_text().split("\n")
    lines[0] = lines[0].replace(
        "household_id", "[Approve here](http://evil.example) ![x](http://e)"
    )
    csv.write_text("\n".join(lines))
    reseal(csv)
    result = run_batch(
        tmp_path, load_scheme("aes-2020-05"), secret=SECRET, signer=signer, funds=["13", "75"]
    )
    text = approval_text(run_summary(result, {}, tmp_path, "operator"))
    assert "75" in text and "evil" in text
    assert "[Approve here](" not in text and "![x](" not in text
    assert r"\[Approve here\]\(http://evil.example\)" in text
