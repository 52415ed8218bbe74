"""A test bank (fixtures, not product): answers uploaded pain.001 files with pain.002
status reports and, later, camt.054 returns. Deterministic for a given seed."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

from lxml import etree
from sqlalchemy import Engine

from payments.sepa.signing import Signer
from tests.iso_reports import Block, Return, Tx, camt054, pain002

REJECT_REASONS = ["AC01", "AC04", "AC06", "MD07"]


def status_report(
    pain001: bytes, *, reject_share: float, seed: int, reject_file: bool = False
) -> tuple[bytes, list[str]]:
    """A pain.002 for one pain.001; returns it and the rejected EndToEndIds."""
    doc = etree.fromstring(pain001)  # any pain.001 version
    msg_id = str(doc.findtext(".//{*}GrpHdr/{*}MsgId"))
    pmt_id = str(doc.findtext(".//{*}PmtInf/{*}PmtInfId"))
    ids = [str(e.text) for e in doc.iterfind(".//{*}CdtTrfTxInf/{*}PmtId/{*}EndToEndId")]
    rng = random.Random(f"{seed}-{msg_id}")
    rejected = [] if reject_file else [i for i in ids if rng.random() < reject_share]
    group = "RJCT" if reject_file else ("PART" if rejected else "ACCP")
    txs = [Tx(e2e, "RJCT", rng.choice(REJECT_REASONS)) for e2e in rejected]
    report = pain002(
        msg_id,
        group=group,
        group_reason="FF01" if reject_file else None,
        blocks=[Block(pmt_id, txs=txs)],
    )
    return report, rejected


def returns_notification(items: list[tuple[str, str, int]]) -> bytes:
    """A camt.054 returning (msg_id, end_to_end_id, cents) items with reason AC04."""
    return camt054([Return(m, e, c) for m, e, c in items])


def answer_folder(bank: Path, *, reject_share: float, seed: int) -> dict[str, list[str]]:
    """pain.002 for every pain.001 in the bank folder: {report path: rejected ids}."""
    out: dict[str, list[str]] = {}
    for path in sorted(bank.rglob("*.xml")):
        if path.name.startswith("STS-"):
            continue
        report, rejected = status_report(path.read_bytes(), reject_share=reject_share, seed=seed)
        target = path.with_name(f"STS-{path.name}")
        target.write_bytes(report)
        out[str(target)] = rejected
    return out


def sent_batch(
    ledger: Engine,
    root: Path,
    signer: Signer,
    funds: tuple[str, ...],
    *,
    seed: int,
    at: datetime,
) -> Path:
    """A 1,200-household batch of ``funds`` run, approved and sent to the local bank folder.

    What the bank answers next is up to the test; returns the bank folder.
    """
    from payments.pipeline import run_batch
    from payments.release import approve
    from payments.sample.writer import SampleSpec, write_sample
    from payments.schemes import load_scheme
    from payments.send import send
    from payments.transport.local import LocalTransport
    from tests.conftest import MAY_2020
    from tests.households import APPROVERS, SECRET

    write_sample(SampleSpec(households=1_200, seed=seed, window=MAY_2020, funds=funds), root)
    result = run_batch(
        root,
        load_scheme("aes-2020-05"),
        secret=SECRET,
        signer=signer,
        ledger_url=ledger.url.render_as_string(hide_password=False),
        funds=list(funds),
        triggered_by="operator",
    )
    approve(ledger, result.out_dir, result.run_id, by="finance", at=at, approvers=APPROVERS)
    send(
        ledger,
        result.out_dir,
        result.run_id,
        LocalTransport(root),
        trusted=signer.certificate,
        at=at,
    )
    from sqlalchemy.orm import Session

    from payments.ledger.integrity import write_chain_head

    with Session(ledger) as session:  # as the DAG's report step does after delivery
        write_chain_head(session, result.out_dir, signer)
    return root / "bank"
