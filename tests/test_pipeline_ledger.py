"""The whole CLI batch with the ledger: a late fund pays only its own households; a rerun
of the same run reproduces the same bytes."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from payments.ledger.models import Payment
from payments.pipeline import run_batch
from payments.sample.writer import SampleSpec, write_sample
from payments.schemes import load_scheme
from payments.sepa.signing import Signer
from tests.conftest import MAY_2020
from tests.households import SECRET


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_late_fund_and_rerun(ledger: Engine, tmp_path: Path, signer: Signer) -> None:
    url = ledger.url.render_as_string(hide_password=False)
    scheme = load_scheme("aes-2020-05")
    all_funds = ["13", "59", "75", "2A"]
    write_sample(
        SampleSpec(households=2_000, seed=3, window=MAY_2020, funds=tuple(all_funds)), tmp_path
    )
    late = tmp_path / "funds" / "75"
    hidden = tmp_path / "late-75"
    late.rename(hidden)  # fund 75's file arrives late

    first = run_batch(
        tmp_path, scheme, secret=SECRET, signer=signer, ledger_url=url, funds=all_funds
    )
    assert first.payments is not None
    paid_first = first.payments.manifest["totals"]["nb_of_txs"]
    assert {f.fund_code: f.status for f in first.validation.funds}["75"] == "missing"
    files_first = _files(first.out_dir / "payments")

    again = run_batch(
        tmp_path, scheme, secret=SECRET, signer=signer, ledger_url=url, funds=all_funds
    )
    assert again.run_id == first.run_id
    assert _files(again.out_dir / "payments") == files_first  # byte-identical rerun

    hidden.rename(late)  # the complementary run, with the late file
    complement = run_batch(
        tmp_path, scheme, secret=SECRET, signer=signer, ledger_url=url, funds=all_funds
    )
    assert complement.run_id != first.run_id and complement.payments is not None
    assert complement.compute is not None
    national = complement.compute.preview["national"]
    assert national["already_paid"]["households"] >= paid_first
    assert {f["fund_code"] for f in complement.payments.manifest["files"]} == {"75"}
    with Session(ledger) as s:
        per_run = dict(
            s.execute(select(Payment.run_id, func.count()).group_by(Payment.run_id)).all()
        )
        total = s.execute(select(func.count()).select_from(Payment)).scalar()
        keys = s.execute(select(func.count(func.distinct(Payment.beneficiary_key)))).scalar()
    assert total == keys  # nobody twice
    assert per_run[complement.run_id] == (
        complement.payments.manifest["totals"]["nb_of_txs"]
        + complement.compute.preview["national"]["held"]["households"]
    )
