"""After a run: four-eyes approval, then the files reach the bank exactly once (real sshd)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from payments.errors import FourEyesError
from payments.ledger import runs
from payments.pipeline import run_batch
from payments.release import approve, reject
from payments.sample.writer import SampleSpec, write_sample
from payments.schemes import load_scheme
from payments.send import send
from payments.sepa.signing import Signer
from payments.transport.base import TransportError
from payments.transport.sftp import SftpTransport
from tests.conftest import MAY_2020
from tests.households import APPROVERS, SECRET
from tests.openssl import openssl_verify
from tests.sshd import SshServer
from tests.vouchers import public_key_path, voucher_file

FUNDS = ["13", "59", "2A"]
AT = datetime(2020, 5, 14, 9, 0)


def _one_fund_run(ledger: Engine, root: Path, signer: Signer, seed: int):  # type: ignore[no-untyped-def]
    """An 800-household sample of fund 13, run with the ledger, triggered by "operator"."""
    write_sample(SampleSpec(households=800, seed=seed, window=MAY_2020, funds=("13",)), root)
    return run_batch(
        root,
        load_scheme("aes-2020-05"),
        secret=SECRET,
        signer=signer,
        ledger_url=ledger.url.render_as_string(hide_password=False),
        funds=["13"],
        triggered_by="operator",
    )


def _states(ledger: Engine) -> dict[str, int]:
    with ledger.connect() as c:
        return dict(c.execute(text("SELECT state, COUNT(*) FROM payments GROUP BY state")).all())


def test_approved_run_reaches_the_bank_once(
    ledger: Engine, tmp_path: Path, signer: Signer, sshd: SshServer
) -> None:
    url = ledger.url.render_as_string(hide_password=False)
    write_sample(
        SampleSpec(households=1_500, seed=8, window=MAY_2020, funds=tuple(FUNDS)), tmp_path
    )
    result = run_batch(
        tmp_path,
        load_scheme("aes-2020-05"),
        secret=SECRET,
        signer=signer,
        ledger_url=url,
        funds=FUNDS,
        triggered_by="operator",
    )
    assert result.payments is not None and result.compute is not None
    bank_root = sshd.root / tmp_path.name
    bank_root.mkdir()
    with SftpTransport(
        sshd.host,
        sshd.port,
        sshd.username,
        sshd.client_key,
        host_key=sshd.host_key_line,
        root=str(bank_root),
    ) as bank:
        with pytest.raises(PermissionError, match="not approved"):
            send(ledger, result.out_dir, result.run_id, bank, trusted=signer.certificate, at=_now())
        with pytest.raises(FourEyesError, match="four eyes"):
            approve(
                ledger, result.out_dir, result.run_id, by="operator", at=_now(), approvers=APPROVERS
            )
        filed = approve(
            ledger, result.out_dir, result.run_id, by="finance", at=_now(), approvers=APPROVERS
        )
        assert filed == result.payments.manifest["totals"]["nb_of_txs"]
        sent = send(
            ledger, result.out_dir, result.run_id, bank, trusted=signer.certificate, at=_now()
        )
        assert set(sent.files.values()) == {"uploaded"} and sent.payments_sent == filed
        again = send(
            ledger, result.out_dir, result.run_id, bank, trusted=signer.certificate, at=_now()
        )
        assert set(again.files.values()) == {"already_sent"} and again.payments_sent == 0
    # at the bank: every file once, with its signature, verified by openssl
    xml = sorted(bank_root.rglob("*.xml"))
    assert [p.name for p in xml] == sorted(
        f["path"].split("/")[1] for f in result.payments.manifest["files"]
    )
    assert not list(bank_root.rglob("*.part"))
    cert = tmp_path / "cert.pem"
    cert.write_bytes(signer.certificate.public_bytes(Encoding.PEM))
    for path in xml:
        ok = openssl_verify(path, cert)
        assert ok.returncode == 0, ok.stderr
    # counts tie out: rows read → payable → filed → sent
    states = _states(ledger)
    national = result.compute.preview["national"]
    assert states.get("sent", 0) == filed == national["payable"]["households"]
    assert states.get("held", 0) == national["held"]["households"]
    with ledger.connect() as c:
        view = c.execute(text("SELECT sent_count, sent_cents FROM finance_by_scheme")).one()
    assert tuple(view) == (filed, result.payments.manifest["totals"]["ctrl_sum_cents"])


def test_rejected_run_sends_nothing(ledger: Engine, tmp_path: Path, signer: Signer) -> None:
    from payments.transport.local import LocalTransport

    result = _one_fund_run(ledger, tmp_path, signer, seed=9)
    reject(ledger, result.run_id, by="finance", at=_now(), approvers=APPROVERS)
    with pytest.raises(PermissionError, match="not approved"):
        send(
            ledger,
            result.out_dir,
            result.run_id,
            LocalTransport(tmp_path),
            trusted=signer.certificate,
            at=_now(),
        )
    assert not (tmp_path / "bank").exists()
    assert set(_states(ledger)) <= {"cancelled", "held"}


def test_a_tampered_batch_is_not_sent(ledger: Engine, tmp_path: Path, signer: Signer) -> None:
    from payments.transport.local import LocalTransport

    result = _one_fund_run(ledger, tmp_path, signer, seed=10)
    approve(ledger, result.out_dir, result.run_id, by="finance", at=_now(), approvers=APPROVERS)
    target = next((result.out_dir / "payments").rglob("*.xml"))
    target.write_bytes(target.read_bytes().replace(b"<Nm>", b"<Nm>X", 1))
    with pytest.raises(TransportError, match="does not verify"):
        send(
            ledger,
            result.out_dir,
            result.run_id,
            LocalTransport(tmp_path),
            trusted=signer.certificate,
            at=_now(),
        )
    assert not (tmp_path / "bank").exists()


def _now():  # type: ignore[no-untyped-def]
    from datetime import datetime

    return datetime(2020, 5, 14, 9, 0, 0)


def test_rerun_after_sending_reproduces_the_same_files(
    ledger: Engine, tmp_path: Path, signer: Signer
) -> None:
    from payments.transport.local import LocalTransport

    first = _one_fund_run(ledger, tmp_path, signer, seed=11)
    before = {p.name: p.read_bytes() for p in (first.out_dir / "payments").rglob("*.xml")}
    approve(ledger, first.out_dir, first.run_id, by="finance", at=_now(), approvers=APPROVERS)
    send(
        ledger,
        first.out_dir,
        first.run_id,
        LocalTransport(tmp_path),
        trusted=signer.certificate,
        at=_now(),
    )
    again = _one_fund_run(ledger, tmp_path, signer, seed=11)  # same bytes, same run
    after = {p.name: p.read_bytes() for p in (again.out_dir / "payments").rglob("*.xml")}
    assert before and after == before
    sent = send(
        ledger,
        again.out_dir,
        again.run_id,
        LocalTransport(tmp_path),
        trusted=signer.certificate,
        at=_now(),
    )
    assert set(sent.files.values()) == {"already_sent"}


def test_released_hold_is_paid_by_the_complementary_run(
    ledger: Engine, tmp_path: Path, signer: Signer
) -> None:
    from sqlalchemy import select
    from sqlalchemy.orm import Session
    from typer.testing import CliRunner

    from payments.cli import app
    from payments.ledger.models import Hold, Payment

    url = ledger.url.render_as_string(hide_password=False)
    write_sample(
        SampleSpec(households=1_000, seed=12, window=MAY_2020, funds=("13", "59")), tmp_path
    )
    late = tmp_path / "funds" / "59"
    late.rename(tmp_path / "late-59")
    scheme = load_scheme("aes-2020-05")
    first = run_batch(
        tmp_path,
        scheme,
        secret=SECRET,
        signer=signer,
        ledger_url=url,
        funds=["13", "59"],
        triggered_by="operator",
    )
    with Session(ledger) as s:
        held = s.execute(
            select(Payment.fund_code, Payment.household_id, Payment.end_to_end_id)
            .where(Payment.state == "held")
            .order_by(Payment.id)
        ).first()
    assert held is not None, "the sample should hold someone (recent bank change)"
    fund, household, e2e = held
    runner = CliRunner()
    listed = runner.invoke(
        app, ["holds", "list"], env={"PAYMENTS_LEDGER_URL": url, "COLUMNS": "250"}
    )
    assert household in listed.output
    assert "art. 2, I" in listed.output or "art. 2, II" in listed.output  # why it is owed
    released = runner.invoke(
        app,
        [
            "holds",
            "release",
            "--fund",
            fund,
            "--household",
            household,
            "--voucher",
            str(voucher_file(tmp_path, "finance")),
            "--note",
            "called the fund",
        ],
        env={
            "PAYMENTS_LEDGER_URL": url,
            "PAYMENTS_IDENTITY_PUBLIC_KEY": str(public_key_path(tmp_path)),
        },
    )
    assert released.exit_code == 0, released.output
    approve(ledger, first.out_dir, first.run_id, by="finance", at=_now(), approvers=APPROVERS)
    (tmp_path / "late-59").rename(late)
    second = run_batch(
        tmp_path,
        scheme,
        secret=SECRET,
        signer=signer,
        ledger_url=url,
        funds=["13", "59"],
        triggered_by="operator",
    )
    assert second.run_id != first.run_id
    xml = b"".join(p.read_bytes() for p in (second.out_dir / "payments").rglob("*.xml"))
    assert e2e.encode() in xml  # the released household is paid now
    first_xml = b"".join(p.read_bytes() for p in (first.out_dir / "payments").rglob("*.xml"))
    assert e2e.encode() not in first_xml
    with Session(ledger) as s:
        payment = s.execute(select(Payment).where(Payment.end_to_end_id == e2e)).scalar_one()
        assert payment.run_id == second.run_id and payment.state == "computed"
        assert (
            s.execute(select(Hold.released_by).where(Hold.payment_id == payment.id)).scalar_one()
            == "finance"
        )


def test_payments_are_placed_in_their_file_when_recorded(
    ledger: Engine, tmp_path: Path, signer: Signer
) -> None:
    """Conclusion records the files and places each payment; approval then changes only states.

    On PostgreSQL the approval's rewrite of every payment is checked to be a
    heap-only-tuple update (the new version in the same page, no index
    entry): a national run's 2.8 M payments rewritten into every index took
    minutes, in place they take seconds. Read from the transaction's own
    statistics, so no timing is involved.
    """
    result = _one_fund_run(ledger, tmp_path, signer, seed=31)
    manifest = result.payments.manifest
    with ledger.connect() as c:
        files = c.execute(text("SELECT msg_id, upload_state FROM payment_files")).all()
        placed = c.execute(
            text(
                "SELECT COUNT(*), SUM(amount_cents) FROM payments "
                "WHERE state = 'computed' AND payment_file_id IS NOT NULL"
            )
        ).one()
    assert sorted(files) == sorted((f["msg_id"], "written") for f in manifest["files"])
    assert tuple(placed) == (
        sum(f["nb_of_txs"] for f in manifest["files"]),
        sum(f["ctrl_sum_cents"] for f in manifest["files"]),
    )
    assert _states(ledger).get("held", 0) > 0, "held payments are in no file"

    with Session(ledger) as session, session.begin():
        filed = runs.approve_run(session, result.run_id, by="finance", at=AT)
        assert filed == placed[0]
        if ledger.dialect.name == "postgresql":
            updated, in_place = session.execute(
                text(
                    "SELECT pg_stat_get_xact_tuples_updated(CAST('payments' AS regclass)), "
                    "pg_stat_get_xact_tuples_hot_updated(CAST('payments' AS regclass))"
                )
            ).one()
            assert (updated, in_place) == (filed, filed)
    assert _states(ledger)["in_file"] == filed
