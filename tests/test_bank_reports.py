"""Bank answers applied to the ledger: accepted, rejected by reason, returned; ties out."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from payments.bank.lines import read_report
from payments.bank.reports import apply_report
from payments.ledger.models import Payment
from payments.sepa.signing import Signer
from tests.bank_simulator import answer_folder, returns_notification, sent_batch, status_report
from tests.vouchers import public_key_path, voucher_file

AT = datetime(2020, 5, 15, 8, 0, 0)


def _view(ledger: Engine) -> dict[str, int]:
    with ledger.connect() as c:
        row = c.execute(text("SELECT * FROM finance_by_scheme")).mappings().one()
    return dict(row)


def test_reports_reconcile_to_the_cent(ledger: Engine, tmp_path: Path, signer: Signer) -> None:
    bank = sent_batch(ledger, tmp_path, signer, ("13", "59"), seed=5, at=AT)
    answers = answer_folder(bank, reject_share=0.05, seed=1)
    rejected = sorted(e for ids in answers.values() for e in ids)
    assert rejected
    with Session(ledger) as s, s.begin():
        for report in answers:
            data = Path(report).read_bytes()
            applied = apply_report(s, read_report(data), source=report, data=data, at=AT)
            assert applied.flagged == []
    # a later return of two accepted payments
    with Session(ledger) as s:
        accepted = s.execute(
            select(Payment.end_to_end_id, Payment.amount_cents)
            .where(Payment.state == "accepted")
            .order_by(Payment.id)
            .limit(2)
        ).all()
    items = [("", e, c) for e, c in accepted]
    camt = returns_notification(items)
    with Session(ledger) as s, s.begin():
        applied = apply_report(s, read_report(camt), source="camt.xml", data=camt, at=AT)
        assert applied.returned == 2
    view = _view(ledger)
    assert view["rejected_count"] == len(rejected)
    assert view["returned_count"] == 2
    assert view["sent_cents"] == (
        view["accepted_cents"] + view["rejected_cents"] + view["returned_cents"]
    )
    assert view["sent_count"] == view["accepted_count"] + view["rejected_count"] + 2
    with ledger.connect() as c:
        by_reason = c.execute(
            text("SELECT SUM(payments) FROM rejections_by_reason WHERE status = 'rejected'")
        ).scalar()
    assert by_reason == len(rejected)


def test_duplicate_and_unmatched_reports_are_flagged(
    ledger: Engine, tmp_path: Path, signer: Signer
) -> None:
    bank = sent_batch(ledger, tmp_path, signer, ("13",), seed=5, at=AT)
    first = next(p for p in sorted(bank.rglob("*.xml")))
    data, _ = status_report(first.read_bytes(), reject_share=0.0, seed=2)
    with Session(ledger) as s, s.begin():
        assert apply_report(s, read_report(data), source="a", data=data, at=AT).flagged == []
    with Session(ledger) as s, s.begin():
        again = apply_report(s, read_report(data), source="a", data=data, at=AT)
    assert again.accepted == 0  # nothing moved twice
    unknown = data.replace(b"<OrgnlMsgId>", b"<OrgnlMsgId>X", 1)
    with Session(ledger) as s, s.begin():
        flagged = apply_report(s, read_report(unknown), source="b", data=unknown, at=AT)
    assert any("matches no payment file" in f for f in flagged.flagged)
    camt = returns_notification([("", "AES202005-13-0000000", 100)])
    with Session(ledger) as s, s.begin():
        flagged = apply_report(s, read_report(camt), source="c", data=camt, at=AT)
    assert flagged.flagged == ["c: EndToEndId AES202005-13-0000000 matches no payment"]


def test_a_whole_file_rejected(ledger: Engine, tmp_path: Path, signer: Signer) -> None:
    bank = sent_batch(ledger, tmp_path, signer, ("13",), seed=5, at=AT)
    first = next(p for p in sorted(bank.rglob("*.xml")))
    data, _ = status_report(first.read_bytes(), reject_share=0.0, seed=3, reject_file=True)
    with Session(ledger) as s, s.begin():
        applied = apply_report(s, read_report(data), source="r", data=data, at=AT)
    assert applied.rejected > 0 and applied.accepted == 0


def test_cli_ingest_and_reconciliation(tmp_path: Path, signer: Signer, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from payments.cli import app
    from payments.ledger.migrate import engine_for, upgrade

    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    monkeypatch.setenv("PAYMENTS_LEDGER_URL", url)
    upgrade(url)
    engine = engine_for(url)
    bank = sent_batch(engine, tmp_path / "data", signer, ("13",), seed=5, at=AT)
    reports = list(answer_folder(bank, reject_share=0.1, seed=4))
    runner = CliRunner()
    monkeypatch.setenv("PAYMENTS_IDENTITY_PUBLIC_KEY", str(public_key_path(tmp_path)))

    def finance() -> list[str]:
        return ["--voucher", str(voucher_file(tmp_path, "finance"))]

    without = runner.invoke(app, ["ingest", *reports])  # a report moves money: who applies it?
    assert without.exit_code == 1 and "pass --voucher" in without.output
    result = runner.invoke(app, ["ingest", *finance(), *reports])
    assert result.exit_code == 0, result.output
    again = runner.invoke(
        app, ["ingest", *finance(), reports[0]]
    )  # the same bytes: seen, not applied again
    assert again.exit_code == 0 and "0 reports applied (1 seen before)" in again.output
    altered = tmp_path / "altered.xml"
    altered.write_bytes(Path(reports[0]).read_bytes() + b"\n")  # other bytes, same lines
    replayed = runner.invoke(app, ["ingest", *finance(), str(altered)])
    assert replayed.exit_code == 1 and "cannot become" in replayed.output
    csv = tmp_path / "reconciliation.csv"
    shown = runner.invoke(app, ["reconciliation", "--out", str(csv)])
    assert shown.exit_code == 0 and "13" in shown.output
    header = csv.read_text().splitlines()[0]
    assert "accepted_cents" in header and "rejected_cents" in header
