"""The audit bundle: one zip an auditor checks offline, without our database or servers.

Members: ``run.json`` (the run record: inputs' and outputs' hashes, parameters,
code version), ``scheme.toml`` (the exact text), ``manifest.json`` and its
signature, ``signer.pem`` (the certificate the files were signed with),
``reconciliation.csv`` (the run's payments by fund and state, in cents),
``events.jsonl`` (the run's events from the hash-chained ledger log, with the
chain's head at export), ``chain-head.json`` and its signature (the head of the
whole chain, signed when the run was delivered) with ``chain.txt`` (every
event's link up to that head), and ``BUNDLE.json`` indexing every member's
SHA-256.

``check_bundle`` recomputes what can be recomputed, against a certificate the
auditor trusts (never the one inside): every member against the index, the
manifest's signature, the manifest's files against the run record, each
event's hash from its fields, the chain's links up to the signed head (so a
rewritten and re-hashed event log is refused), and the cents of the
reconciliation against the manifest.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payments.archive import RUN_RECORD, get, sha256_bytes
from payments.ledger.events import GENESIS, event_hash
from payments.ledger.integrity import CHAIN_HEAD, COUNTING, Unaccounted, replay_counts
from payments.ledger.migrate import engine_for
from payments.ledger.models import Event, Payment
from payments.sepa.layout import MANIFEST
from payments.sepa.signing import SIGNATURE_SUFFIX, SignatureError, verify_detached
from payments.spreadsheet import cell

INDEX = "BUNDLE.json"
#: Every event's link up to the signed chain head (``seq prev_hash hash`` per line).
CHAIN = "chain.txt"
#: A zip's members get a fixed time, so the same run gives the same bundle bytes.
ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def _reconciliation(session: Session, run_id: str) -> bytes:
    rows = session.execute(
        select(
            Payment.fund_code,
            Payment.state,
            func.count(),
            func.sum(Payment.amount_cents),
        )
        .where(Payment.run_id == run_id)
        .group_by(Payment.fund_code, Payment.state)
        .order_by(Payment.fund_code, Payment.state)
    ).all()
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(["fund_code", "state", "payments", "amount_cents"])
    for fund, state, n, cents in rows:
        writer.writerow([cell(fund), cell(state), int(n), int(cents)])
    return out.getvalue().encode()


def _events(session: Session, run_id: str) -> bytes:
    lines = []
    # The run's own events, and every change of state that moved some of its payments
    # (a bank report's moves span runs): check_bundle recounts the run's states from them.
    mentions = Event.kind.in_(COUNTING) & Event.payload.contains(f'"{run_id}"')
    for e in session.execute(
        select(Event).where((Event.run_id == run_id) | mentions).order_by(Event.seq)
    ).scalars():
        lines.append(
            json.dumps(
                {
                    "seq": e.seq,
                    "at": e.at.isoformat(),
                    "kind": e.kind,
                    "run_id": e.run_id,
                    "payload": e.payload,
                    "prev_hash": e.prev_hash,
                    "hash": e.hash,
                },
                sort_keys=True,
            )
        )
    head = session.execute(
        select(Event.seq, Event.hash).order_by(Event.seq.desc()).limit(1)
    ).first()
    if head is not None:
        lines.append(json.dumps({"chain_head": {"seq": head[0], "hash": head[1]}}))
    return ("\n".join(lines) + "\n").encode()


def export_bundle(root: Path, ledger_url: str, run_id: str, out: Path, cert: Path) -> Path:
    """Write the run's audit bundle to ``out`` (a .zip)."""
    run_dir = root / "runs" / run_id
    record_bytes = (run_dir / RUN_RECORD).read_bytes()
    record = json.loads(record_bytes)
    payments = run_dir / "payments"
    with Session(engine_for(ledger_url)) as session:
        members = {
            RUN_RECORD: record_bytes,
            "scheme.toml": get(root, record["scheme_sha256"]),
            MANIFEST: (payments / MANIFEST).read_bytes(),
            MANIFEST + SIGNATURE_SUFFIX: (payments / (MANIFEST + SIGNATURE_SUFFIX)).read_bytes(),
            "signer.pem": x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(
                Encoding.PEM
            ),
            "reconciliation.csv": _reconciliation(session, run_id),
            "events.jsonl": _events(session, run_id),
        }
        head_path = run_dir / CHAIN_HEAD
        if head_path.exists():
            head = head_path.read_bytes()
            members[CHAIN_HEAD] = head
            members[CHAIN_HEAD + SIGNATURE_SUFFIX] = (
                run_dir / (CHAIN_HEAD + SIGNATURE_SUFFIX)
            ).read_bytes()
            members[CHAIN] = _chain(session, int(json.loads(head)["seq"]))
    index = {
        "run_id": run_id,
        "members": {name: sha256_bytes(data) for name, data in sorted(members.items())},
    }
    members[INDEX] = (json.dumps(index, indent=2, sort_keys=True) + "\n").encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(members):
            z.writestr(zipfile.ZipInfo(name, ZIP_TIME), members[name])
    return out


def _chain(session: Session, head: int) -> bytes:
    """Every event's link up to the signed head: ``seq prev_hash hash`` per line."""
    rows = session.execute(
        select(Event.seq, Event.prev_hash, Event.hash).where(Event.seq <= head).order_by(Event.seq)
    )
    return "".join(f"{seq} {prev} {digest}\n" for seq, prev, digest in rows).encode()


def _rejected(members: dict[str, bytes]) -> bool:
    """True when the bundle's events say finance rejected the run, in an event the signed
    chain head covers (one appended after it proves nothing)."""
    head = int(json.loads(members[CHAIN_HEAD])["seq"]) if CHAIN_HEAD in members else 0
    for line in members["events.jsonl"].decode().splitlines():
        event = json.loads(line)
        if event.get("kind") == "run_rejected" and int(event.get("seq", head + 1)) <= head:
            return True
    return False


def _check_chain(members: dict[str, bytes], trusted: x509.Certificate) -> list[str]:
    """The run's events link, through the whole chain, to a head signed outside the database."""
    if CHAIN_HEAD not in members:
        return [f"{CHAIN_HEAD}: missing: the run's events are not anchored (run not decided?)"]
    try:
        verify_detached(members[CHAIN_HEAD], members[CHAIN_HEAD + SIGNATURE_SUFFIX], trusted)
    except (SignatureError, KeyError) as exc:
        return [f"{CHAIN_HEAD}: signature does not verify: {exc}"]
    head = json.loads(members[CHAIN_HEAD])
    links: dict[int, str] = {}
    prev = GENESIS
    for n, line in enumerate(members.get(CHAIN, b"").decode().splitlines(), start=1):
        seq, before, digest = line.split()
        if int(seq) != n or before != prev:
            return [f"{CHAIN}: the chain breaks at event {seq}"]
        links[n], prev = digest, digest
    if links.get(int(head["seq"])) != head["hash"] or len(links) != int(head["seq"]):
        return [f"{CHAIN}: does not end at the signed head (event {head['seq']})"]
    problems = []
    for line in members["events.jsonl"].decode().splitlines():
        event = json.loads(line)
        if "seq" in event and event["seq"] <= len(links) and links[event["seq"]] != event["hash"]:
            problems.append(f"events.jsonl: event {event['seq']} is not the chain's (rewritten)")
    return problems


def _check_states(members: dict[str, bytes], run_id: str) -> list[str]:
    """The reconciliation's payments by state are those the run's events account for."""
    events = [json.loads(line) for line in members["events.jsonl"].decode().splitlines()]
    try:
        counts = replay_counts(
            (e["kind"], e["run_id"], e["payload"])
            for e in events
            if "kind" in e and e["kind"] in COUNTING
        )
    except Unaccounted:
        return []
    expected = {s: n for (r, s), n in counts.items() if r == run_id and n}
    shown: dict[str, int] = {}
    rows = csv.DictReader(io.StringIO(members["reconciliation.csv"].decode()), delimiter=";")
    for row in rows:
        shown[row["state"]] = shown.get(row["state"], 0) + int(row["payments"])
    if shown != expected:
        return [
            f"reconciliation.csv: payments by state {dict(sorted(shown.items()))}, the signed "
            f"event log {dict(sorted(expected.items()))} (rewritten)"
        ]
    return []


def check_bundle(path: Path, trusted: x509.Certificate | None) -> list[str]:
    """Every problem found in an audit bundle, offline; empty when it all holds.

    ``trusted``: the signer certificate the auditor trusts. Without one nothing
    can be proven (a bundle's own certificate is whatever its maker put there).
    """
    if trusted is None:
        return ["no trusted certificate given: a bundle's own certificate proves nothing"]
    problems: list[str] = []
    with zipfile.ZipFile(path) as z:
        members = {name: z.read(name) for name in z.namelist()}
    index = json.loads(members.pop(INDEX, b"{}") or b"{}")
    for name, digest in index.get("members", {}).items():
        if name not in members:
            problems.append(f"{name}: listed in {INDEX} but missing")
        elif sha256_bytes(members[name]) != digest:
            problems.append(f"{name}: SHA-256 differs from {INDEX}")
    for name in sorted(members.keys() - index.get("members", {}).keys()):
        problems.append(f"{name}: not listed in {INDEX}")
    if problems:
        return problems
    record = json.loads(members[RUN_RECORD])
    if sha256_bytes(members["scheme.toml"]) != record["scheme_sha256"]:
        problems.append("scheme.toml: not the scheme text the run recorded")
    try:
        verify_detached(members[MANIFEST], members[MANIFEST + SIGNATURE_SUFFIX], trusted)
    except SignatureError as exc:
        problems.append(f"{MANIFEST}: signature does not verify: {exc}")
    manifest: dict[str, Any] = json.loads(members[MANIFEST])
    outputs = record.get("outputs", {})
    if outputs.get(f"payments/{MANIFEST}") != sha256_bytes(members[MANIFEST]):
        problems.append(f"{MANIFEST}: not the manifest the run recorded")
    for f in manifest.get("files", []):
        if outputs.get(f"payments/{f['path']}") != f["sha256"]:
            problems.append(f"{f['path']}: manifest hash differs from the run record")
    for line in members["events.jsonl"].decode().splitlines():
        event = json.loads(line)
        if "chain_head" in event:
            continue
        expected = event_hash(
            event["seq"],
            datetime.fromisoformat(event["at"]),
            event["kind"],
            event["run_id"],
            event["payload"],
            event["prev_hash"],
        )
        if expected != event["hash"]:
            problems.append(f"events.jsonl: event {event['seq']} does not hash to its hash")
    problems += _check_chain(members, trusted)
    problems += _check_states(members, str(record.get("run_id") or index.get("run_id")))
    rows = list(csv.DictReader(io.StringIO(members["reconciliation.csv"].decode()), delimiter=";"))
    filed = sum(
        int(r["amount_cents"])
        for r in rows
        if r["state"] in ("in_file", "sent", "accepted", "rejected", "returned")
    )
    if _rejected(members):
        # Finance rejected the run: its files never left and its payments were cancelled.
        if filed:
            problems.append(f"reconciliation.csv: {filed} cents filed in a rejected run")
    elif filed != manifest.get("totals", {}).get("ctrl_sum_cents"):
        problems.append(
            f"reconciliation.csv: {filed} cents filed, the manifest says "
            f"{manifest.get('totals', {}).get('ctrl_sum_cents')}"
        )
    return problems
