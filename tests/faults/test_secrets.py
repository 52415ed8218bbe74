"""No silent secrets: a missing one stops the run; a different one is refused by the ledger."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from payments.cli import app
from payments.ledger.runs import KeyVersionError
from payments.pipeline import run_batch
from payments.schemes import load_scheme
from payments.sepa.signing import Signer
from tests.faults.runs import edit_fund_file, sample


def test_outside_the_demo_a_missing_secret_stops_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """H7: payments run silently made a new beneficiary-key secret and a demo signing key."""
    sample(tmp_path, ("13",))
    for name in ("PAYMENTS_DEMO", "PAYMENTS_KEY_SECRET", "PAYMENTS_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path))
    done = CliRunner().invoke(app, ["run", "--funds", "13"])
    assert done.exit_code == 1, done.output
    assert "no beneficiary-key secret: set PAYMENTS_KEY_SECRET" in done.output
    assert "Traceback" not in done.output
    assert not (tmp_path / "secrets").exists()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").glob("aes-*"))
    # the key secret given, the signing key is still missing: refused the same way
    monkeypatch.setenv("PAYMENTS_KEY_SECRET", "ab" * 32)
    done = CliRunner().invoke(app, ["run", "--funds", "13"])
    assert done.exit_code == 1 and "no signing key" in done.output, done.output
    assert not (tmp_path / "secrets").exists()


def _moved_claimant(root: Path) -> None:
    """Fund 13's first claimant filed again by fund 75 (moved house), as household 7777777."""
    first = (root / "funds" / "13" / "13_aes-2020-05.csv").read_text().split("\n")[1].split(";")

    def add(rows: list[list[str]], col: dict[str, int]) -> None:
        moved = list(first)
        moved[col["fund_code"]], moved[col["household_id"]] = "75", "7777777"
        rows.insert(0, moved)

    edit_fund_file(root, "75", add)


def test_a_run_keyed_with_another_secret_is_refused(
    ledger: Engine, tmp_path: Path, signer: Signer
) -> None:
    """H7: with another secret, a claimant already paid by fund 13 was paid again by fund 75."""
    sample(tmp_path, ("13", "75"))
    _moved_claimant(tmp_path)
    url = ledger.url.render_as_string(hide_password=False)
    scheme = load_scheme("aes-2020-05")
    run_batch(
        tmp_path, scheme, secret=b"a" * 32, signer=signer, ledger_url=url, funds=["13"],
        triggered_by="operator",
    )  # fmt: skip
    with pytest.raises(KeyVersionError, match="another beneficiary-key secret"):
        run_batch(
            tmp_path, scheme, secret=b"b" * 32, signer=signer, ledger_url=url, funds=["75"],
            triggered_by="operator",
        )  # fmt: skip
    with ledger.connect() as c:
        assert c.execute(text("SELECT COUNT(*) FROM runs")).scalar_one() == 1
        assert not c.execute(
            text("SELECT COUNT(*) FROM payments WHERE household_id = '7777777'")
        ).scalar_one()
    # the control: with the same secret the moved claimant is found already paid
    same = run_batch(
        tmp_path, scheme, secret=b"a" * 32, signer=signer, ledger_url=url, funds=["75"],
        triggered_by="operator",
    )  # fmt: skip
    assert same.compute is not None
    with ledger.connect() as c:
        assert not c.execute(
            text("SELECT COUNT(*) FROM payments WHERE household_id = '7777777'")
        ).scalar_one()
