"""A run above every bind-parameter limit, through the ledger on SQLite and PostgreSQL.

SQLite refuses statements with more than 32,766 bound values, PostgreSQL more
than 65,535. A run's payments number in millions nationally, so every
operation over them must be set-based: this test takes one run of more than
100,000 payments through approval, filing, sending, a 100,000-line bank
status report, returns, the re-issue list and reconciliation. Any statement
that binds a list growing with the run fails it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

from payments.bank.lines import read_report
from payments.bank.reports import apply_report
from payments.ledger.finance import finance_by_fund, reissue_list, tie_out
from payments.pipeline import run_batch
from payments.release import approve, reject
from payments.run_spec import RunOptions
from payments.sample.writer import SampleSpec, write_sample
from payments.schemes import load_scheme
from payments.send import send
from payments.sepa.layout import MANIFEST, TRANSACTIONS
from payments.sepa.profiles import load_profile
from payments.sepa.signing import Signer
from payments.transport.local import LocalTransport
from tests.conftest import MAY_2020
from tests.households import APPROVERS, SECRET
from tests.iso_reports import Return, camt054

#: Above SQLite's 32,766 and PostgreSQL's 65,535 bound values per statement.
PAYMENTS = 100_000
AT = datetime(2020, 5, 14, 9, 0)
#: SQLite's compiled default (since 3.32); Debian's build allows 250,000, other
#: builds keep the default: the test holds every SQLite connection to it.
SQLITE_MAX_VARIABLES = 32_766


@pytest.fixture(autouse=True)
def _sqlite_default_limits() -> Iterator[None]:
    def limit(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, SQLITE_MAX_VARIABLES)

    event.listen(Engine, "connect", limit)
    yield
    event.remove(Engine, "connect", limit)


def _pain002(msg_id: str, lines: list[tuple[str, str | None]]) -> bytes:
    """A pain.002 answering every transaction of one file: (EndToEndId, reject reason or None)."""
    txs = "".join(
        f"<TxInfAndSts><OrgnlEndToEndId>{e2e}</OrgnlEndToEndId>"
        + (
            f"<TxSts>RJCT</TxSts><StsRsnInf><Rsn><Cd>{reason}</Cd></Rsn></StsRsnInf>"
            if reason
            else "<TxSts>ACCP</TxSts>"
        )
        + "</TxInfAndSts>"
        for e2e, reason in lines
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"><CstmrPmtStsRpt>'
        f"<GrpHdr><MsgId>STS-{msg_id}</MsgId><CreDtTm>2020-05-15T07:00:00</CreDtTm></GrpHdr>"
        f"<OrgnlGrpInfAndSts><OrgnlMsgId>{msg_id}</OrgnlMsgId>"
        "<OrgnlMsgNmId>pain.001.001.03</OrgnlMsgNmId><GrpSts>PART</GrpSts></OrgnlGrpInfAndSts>"
        f"<OrgnlPmtInfAndSts><OrgnlPmtInfId>{msg_id}-1</OrgnlPmtInfId>{txs}"
        "</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>"
    ).encode()


def _camt054(items: list[tuple[str, str, int]]) -> bytes:
    return camt054([Return(m, e, c) for m, e, c in items])


def _states(ledger: Engine) -> dict[str, tuple[int, int]]:
    with ledger.connect() as c:
        rows = c.execute(
            text("SELECT state, COUNT(*), SUM(amount_cents) FROM payments GROUP BY state")
        ).all()
    return {str(s): (int(n), int(c)) for s, n, c in rows}


def _run(
    ledger: Engine,
    root: Path,
    signer: Signer,
    *,
    seed: int,
    fund: str,
    options: RunOptions | None = None,
) -> Any:
    """A run of 150,000 households of one fund, triggered by "operator", with the ledger."""
    write_sample(SampleSpec(households=150_000, seed=seed, window=MAY_2020, funds=(fund,)), root)
    return run_batch(
        root,
        load_scheme("aes-2020-05"),
        secret=SECRET,
        signer=signer,
        ledger_url=ledger.url.render_as_string(hide_password=False),
        funds=[fund],
        triggered_by="operator",
        options=options or RunOptions(),
    )


def test_a_run_above_the_bind_limits_goes_through_the_ledger(
    ledger: Engine, tmp_path: Path, signer: Signer
) -> None:
    # One fund, one file of more than 100,000 transactions (the bank's file limits
    # lifted so that a single bank report answers them all).
    unlimited = replace(load_profile("epc-2019"), max_transactions=200_000, max_bytes=10**9)
    result = _run(
        ledger,
        tmp_path,
        signer,
        seed=21,
        fund="59",
        options=RunOptions(max_transactions=200_000, bank_profile=unlimited),
    )
    assert result.payments is not None
    manifest = result.payments.manifest
    [payment_file] = manifest["files"]
    assert payment_file["nb_of_txs"] > PAYMENTS, "the sample must give more payments than that"
    held = _states(ledger).get("held", (0, 0))[0]
    assert held > 0

    # approve: every payment of the file approved and filed, the holds left as they are
    filed = approve(ledger, result.out_dir, result.run_id, by="finance", at=AT, approvers=APPROVERS)
    assert filed == payment_file["nb_of_txs"]
    assert _states(ledger)["in_file"] == (filed, payment_file["ctrl_sum_cents"])

    # send: the file once, then every payment sent
    sent = send(
        ledger,
        result.out_dir,
        result.run_id,
        LocalTransport(tmp_path),
        trusted=signer.certificate,
        at=AT,
    )
    assert sent.payments_sent == filed
    assert _states(ledger)["sent"] == (filed, payment_file["ctrl_sum_cents"])

    # a pain.002 answering each of the file's transactions: one in fifty rejected
    placement = pl.read_parquet(result.out_dir / "payments" / TRANSACTIONS)
    e2e = placement.get_column("end_to_end_id").to_list()
    answers = [(e, "AC04" if i % 50 == 0 else None) for i, e in enumerate(e2e)]
    report = _pain002(payment_file["msg_id"], answers)
    lines = read_report(report)
    assert len(lines) > PAYMENTS
    with Session(ledger) as session, session.begin():
        applied = apply_report(session, lines, source="STS-1.xml", data=report, at=AT)
    rejected = sum(1 for _, r in answers if r)
    assert (applied.accepted, applied.rejected, applied.flagged) == (
        filed - rejected,
        rejected,
        [],
    )

    # returns of one accepted payment in a hundred
    with ledger.connect() as c:
        amounts = dict(
            c.execute(
                text("SELECT end_to_end_id, amount_cents FROM payments WHERE state = 'accepted'")
            ).all()
        )
    returned = sorted(amounts)[::100]
    camt = _camt054([(payment_file["msg_id"], e, int(amounts[e])) for e in returned])
    with Session(ledger) as session, session.begin():
        applied = apply_report(session, read_report(camt), source="RTN-1.xml", data=camt, at=AT)
    assert (applied.returned, applied.flagged) == (len(returned), [])
    # the same report again changes nothing and says why, line by line
    with Session(ledger) as session, session.begin():
        again = apply_report(session, read_report(camt), source="RTN-1.xml", data=camt, at=AT)
    assert again.returned == 0 and len(again.flagged) == len(returned)

    # the re-issue list: every rejected and returned payment
    with Session(ledger) as session:
        reissue = reissue_list(session)
    assert len(reissue) == rejected + len(returned)

    # reconciliation ties out to the cent
    states = _states(ledger)
    assert states["accepted"][0] + states["rejected"][0] + states["returned"][0] == filed
    [fund] = finance_by_fund(ledger)
    assert fund["sent_cents"] == payment_file["ctrl_sum_cents"]
    assert all(r["ties_out"] for r in tie_out(ledger))
    assert json.loads((result.out_dir / "payments" / MANIFEST).read_text())["totals"]


def test_rejecting_a_run_above_the_bind_limits_cancels_every_payment(
    ledger: Engine, tmp_path: Path, signer: Signer
) -> None:
    result = _run(ledger, tmp_path, signer, seed=22, fund="13")
    computed = _states(ledger)["computed"][0]
    assert computed > PAYMENTS
    reject(ledger, result.run_id, by="finance", at=AT, approvers=APPROVERS)
    assert _states(ledger)["cancelled"][0] == computed
