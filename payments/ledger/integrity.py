"""Tamper evidence beyond the event chain: the ledger's rows against the events, and the
chain against heads signed outside the database.

The hash chain (:mod:`payments.ledger.events`) shows an edited or deleted event.
It does not show, on its own, an edited ``payments`` or ``runs`` row, a deleted
tail, or a chain rewritten and re-hashed by someone with write access to the
database. These checks do:

- **State accounting**: every change of state is an event naming, per run, how
  many payments left which state (:func:`payments.ledger.moves.move`); replayed,
  the events give each run's payments by state, which must be the table's.
- **Amounts**: each payment file's payments in the ledger, in number and cents,
  must be the figures of the run's *signed* manifest (the signing key is not the
  database's).
- **Decisions and uploads**: a run's decision and approver must be those of its
  last decision event; a file the events say was uploaded must be ``uploaded``.
- **Signed chain heads**: after a run's delivery the head of the chain
  (sequence number and hash) is signed and kept with the run
  (``runs/<run>/chain-head.json`` and its ``.p7s``), and after each
  reconciliation in ``reconciliation/``. The chain must still hold
  that row with that hash: a deleted tail or a re-hashed chain shows.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payments.archive import sha256_bytes
from payments.ledger import states
from payments.ledger.events import verify_chain
from payments.ledger.models import Event, Payment, PaymentFileRow, Run
from payments.sepa.layout import MANIFEST
from payments.sepa.signing import SIGNATURE_SUFFIX, SignatureError, Signer, verify_detached
from payments.statuses import RunDecision, Upload

CHAIN_HEAD = "chain-head.json"


#: The events that change how many payments a run has in each state.
COUNTING = ("decisions_recorded", "payments_state", "released_payments_adopted")


class Unaccounted(ValueError):
    """Events written before state changes named their runs: nothing to recount from."""


def replay_counts(events: Iterable[tuple[str, str | None, str]]) -> Counter[tuple[str, str]]:
    """(run, state) → payments, from (kind, run id, payload) events in chain order."""
    expected: Counter[tuple[str, str]] = Counter()
    for kind, run, body in events:
        run_id = str(run)
        payload: dict[str, Any] = json.loads(body)
        if kind == "decisions_recorded":
            expected[(run_id, states.COMPUTED)] += payload["inserted"] - payload["held"]
            expected[(run_id, states.HELD)] += payload["held"]
        elif kind == "released_payments_adopted":
            if "from_runs" not in payload:
                raise Unaccounted(kind)
            for source, n in payload["from_runs"].items():
                expected[(source, states.COMPUTED)] -= n
                expected[(run_id, states.COMPUTED)] += n
        elif kind == "payments_state":
            if "runs" not in payload:
                raise Unaccounted(kind)
            for source, by_state in payload["runs"].items():
                for state, n in by_state.items():
                    expected[(source, state)] -= n
                    expected[(source, payload["to"])] += n
    return expected


def recount(session: Session) -> list[str]:
    """Each run's payments by state, replayed from the events, against the table."""
    try:
        expected = replay_counts(
            session.execute(
                select(Event.kind, Event.run_id, Event.payload)
                .where(Event.kind.in_(COUNTING))
                .order_by(Event.seq)
            ).tuples()
        )
    except Unaccounted:
        return ["state accounting skipped: the ledger predates it"]
    actual = Counter(
        {
            (str(r), str(s)): int(n)
            for r, s, n in session.execute(
                select(Payment.run_id, Payment.state, func.count()).group_by(
                    Payment.run_id, Payment.state
                )
            )
        }
    )
    problems = []
    for key in sorted(set(expected) | set(actual)):
        if expected[key] != actual[key]:
            run, state = key
            problems.append(
                f"run {run}: {actual[key]} payments {state} in the table, "
                f"{expected[key]} by the event log (rows edited)"
            )
    return problems


def decisions(session: Session) -> list[str]:
    """Each run's decision and approver as its last decision event says."""
    last: dict[str, tuple[str, str]] = {}
    for kind, run_id, body in session.execute(
        select(Event.kind, Event.run_id, Event.payload)
        .where(Event.kind.in_(["run_approved", "run_rejected"]))
        .order_by(Event.seq)
    ):
        decided = RunDecision.APPROVED if kind == "run_approved" else RunDecision.REJECTED
        last[str(run_id)] = (decided, str(json.loads(body)["by"]))
    problems = []
    for run in session.execute(select(Run)).scalars():
        said = last.get(run.run_id)
        held = (run.decision, run.approved_by) if run.decision else None
        if held != said:
            problems.append(
                f"run {run.run_id}: the runs table says {held}, the event log {said} (row edited)"
            )
    return problems


def uploads(session: Session) -> list[str]:
    """A file the events say went to the bank is ``uploaded`` in the table."""
    sent = {
        json.loads(body)["msg_id"]
        for (body,) in session.execute(select(Event.payload).where(Event.kind == "file_uploaded"))
    }
    rows = session.execute(select(PaymentFileRow.msg_id, PaymentFileRow.upload_state))
    return [
        f"{msg}: uploaded by the event log, {state!r} in the table (row edited)"
        for msg, state in rows
        if msg in sent and state != Upload.UPLOADED
    ]


def files(session: Session, runs_dir: Path, trusted: x509.Certificate) -> list[str]:
    """Each payment file's payments, in number and cents, against the signed manifest."""
    problems: list[str] = []
    counted = {
        int(f or 0): (int(n), int(c or 0))
        for f, n, c in session.execute(
            select(Payment.payment_file_id, func.count(), func.sum(Payment.amount_cents))
            .where(Payment.payment_file_id.is_not(None))
            .group_by(Payment.payment_file_id)
        )
    }
    rows = {r.msg_id: r for r in session.execute(select(PaymentFileRow)).scalars()}
    for run_id in sorted({r.run_id for r in rows.values()}):
        batch = runs_dir / run_id / "payments"
        manifest_path = batch / MANIFEST
        if not manifest_path.exists():
            problems.append(f"run {run_id}: {manifest_path} missing")
            continue
        data = manifest_path.read_bytes()
        try:
            verify_detached(data, (batch / (MANIFEST + SIGNATURE_SUFFIX)).read_bytes(), trusted)
        except (SignatureError, OSError) as exc:
            problems.append(f"run {run_id}: the manifest's signature does not verify: {exc}")
            continue
        for entry in json.loads(data)["files"]:
            row = rows.get(entry["msg_id"])
            signed = (entry["sha256"], entry["nb_of_txs"], entry["ctrl_sum_cents"])
            if row is None or (row.sha256, row.nb_of_txs, row.ctrl_sum_cents) != signed:
                problems.append(f"{entry['msg_id']}: the ledger's row differs from the manifest")
                continue
            if counted.get(row.id, (0, 0)) != signed[1:]:
                n, cents = counted.get(row.id, (0, 0))
                problems.append(
                    f"{row.msg_id}: the ledger holds {n} payments, {cents} cents in it; the "
                    f"signed manifest {signed[1]}, {signed[2]} (payments edited)"
                )
    return problems


def write_chain_head(session: Session, run_dir: Path, signer: Signer) -> dict[str, Any]:
    """Sign the chain's head and keep it with the run: ``chain-head.json`` and its ``.p7s``."""
    head = session.execute(select(Event).order_by(Event.seq.desc()).limit(1)).scalar_one()
    doc = {
        "seq": head.seq,
        "hash": head.hash,
        "signed_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
    }
    data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CHAIN_HEAD).write_bytes(data)
    (run_dir / (CHAIN_HEAD + SIGNATURE_SUFFIX)).write_bytes(signer.sign(data))
    return doc


def chain_heads(session: Session, root: Path, trusted: x509.Certificate) -> list[str]:
    """Every signed head kept under the storage root (with a run, or with the reconciliation) is
    still in the chain, with its hash."""
    problems = []
    hashes = dict(session.execute(select(Event.seq, Event.hash)).tuples().all())
    heads = [*root.glob(f"runs/*/{CHAIN_HEAD}"), *root.glob(f"reconciliation/{CHAIN_HEAD}")]
    for path in sorted(heads):
        data = path.read_bytes()
        try:
            verify_detached(
                data, path.with_name(CHAIN_HEAD + SIGNATURE_SUFFIX).read_bytes(), trusted
            )
        except (SignatureError, OSError) as exc:
            problems.append(f"{path}: signature does not verify: {exc}")
            continue
        head = json.loads(data)
        found = hashes.get(head["seq"])
        if found is None:
            problems.append(f"{path}: event {head['seq']} is gone (the chain was cut)")
        elif found != head["hash"]:
            problems.append(
                f"{path}: event {head['seq']} has another hash (the chain was rewritten)"
            )
    return problems


def verify_ledger(session: Session, root: Path, trusted: x509.Certificate | None) -> list[str]:
    """All of the above, for the storage root ``root`` (the chain itself is
    :func:`payments.ledger.events.verify_chain`). Without the signing certificate
    (``trusted`` None) nothing signed can be checked: that is a problem as soon as
    the ledger holds payment files."""
    problems = [*recount(session), *decisions(session), *uploads(session)]
    if trusted is not None:
        return [
            *problems,
            *files(session, root / "runs", trusted),
            *chain_heads(session, root, trusted),
        ]
    if session.execute(select(PaymentFileRow.id).limit(1)).first() is not None:
        problems.append("no signing certificate: the signed manifests and chain heads go unchecked")
    return problems


def stored_files(session: Session, root: Path) -> tuple[list[str], int]:
    """Each payment file the ledger records, on disk with its recorded SHA-256.

    Returns (problems, files checked).
    """
    problems: list[str] = []
    rows = list(session.execute(select(PaymentFileRow)).scalars())
    for row in rows:
        path = root / "runs" / row.run_id / "payments" / row.path
        if not path.exists():
            problems.append(f"{path}: payment file missing (the ledger has {row.msg_id})")
        elif sha256_bytes(path.read_bytes()) != row.sha256:
            problems.append(f"{path}: SHA-256 differs from the ledger's (file altered)")
    return problems, len(rows)


def audit(session: Session, root: Path, trusted: x509.Certificate | None) -> tuple[list[str], int]:
    """What ``payments audit verify`` reports: the event chain, the ledger against it and
    the signed files, and every payment file's bytes. Returns (problems, files checked)."""
    problems = [*verify_chain(session), *verify_ledger(session, root, trusted)]
    on_disk, count = stored_files(session, root)
    return [*problems, *on_disk], count
