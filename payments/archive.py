"""What an auditor needs to replay a run: its inputs, content-addressed, and the run record.

Every run (not dry runs) leaves ``runs/<run_id>/run.json``: the scheme (its
text is archived), the parameters, the code version, every input file and
companion by SHA-256, the ledger state the run read (prior payments and
released holds, archived as files too), and the SHA-256 of every output file.
Inputs live once under ``archive/sha256/<hash>`` in the storage root, whatever
the number of runs that read them. ``payments replay`` rebuilds the run from
this record alone.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from payments import __version__
from payments.contract import load_contract
from payments.intake import Receipt
from payments.transport.base import TransportError
from payments.transport.local import read_regular

if TYPE_CHECKING:  # the run's types pull the data stack; delivery tasks import this
    from payments.run_spec import LedgerRead
    from payments.schemes import Scheme

RUN_RECORD = "run.json"
ARCHIVE = "archive"
#: Output folders of a run whose every file is hashed in the run record.
OUTPUT_FOLDERS = ("validation", "compute", "payments")
#: Bookkeeping files that are not outputs (the DAG's per-fund hand-over).
NOT_OUTPUTS = frozenset({"outcome.json"})


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def archive_key(digest: str) -> str:
    """Where ``digest`` lives, relative to the storage root."""
    return f"{ARCHIVE}/sha256/{digest[:2]}/{digest}"


def archive_path(root: Path, digest: str) -> Path:
    return root / archive_key(digest)


def put(root: Path, data: bytes) -> str:
    """Store ``data`` under its SHA-256 (once); return the hash."""
    digest = sha256_bytes(data)
    path = archive_path(root, digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(path.name + ".part")
        temp.write_bytes(data)
        os.replace(temp, path)
    return digest


def get(root: Path, digest: str) -> bytes:
    """The archived bytes of ``digest``; raises when they no longer hash to it."""
    data = archive_path(root, digest).read_bytes()
    actual = sha256_bytes(data)
    if actual != digest:
        raise ValueError(f"archive/sha256/{digest[:2]}/{digest}: content hashes to {actual}")
    return data


def output_hashes(run_dir: Path) -> dict[str, str]:
    """SHA-256 of every output file of a run, by path relative to the run folder."""
    hashes: dict[str, str] = {}
    for folder in OUTPUT_FOLDERS:
        for path in sorted((run_dir / folder).rglob("*")):
            if path.is_file() and path.name not in NOT_OUTPUTS:
                hashes[str(path.relative_to(run_dir))] = sha256_bytes(path.read_bytes())
    return hashes


def table_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def write_run_record(
    root: Path,
    run_dir: Path,
    *,
    run_id: str,
    scheme: Scheme,
    inputs_root: Path,
    receipts: list[Receipt],
    parameters: dict[str, Any],
    seen: LedgerRead,
) -> dict[str, Any]:
    """Archive the run's inputs and write ``run.json`` in ``run_dir`` (outputs already there).

    ``seen``: what the run read of the ledger (prior payments, released holds)
    and what the ledger decided (keys claimed by another run, re-issue
    attempts): a replay starts from it instead of the ledger.
    """
    prior = seen.prior
    prior_sorted = (
        prior.sort_by([("beneficiary_key", "ascending"), ("scheme_id", "ascending")])
        if prior is not None
        else None
    )
    record = {
        "run_id": run_id,
        "scheme_id": scheme.id,
        "scheme_sha256": put(root, scheme.text.encode()),
        "code_version": __version__,
        "parameters": parameters,
        "inputs": _archive_inputs(root, inputs_root, receipts),
        "ledger_read": {
            "prior_sha256": put(root, table_bytes(prior_sorted)) if prior_sorted else None,
            "released": sorted(seen.released),
            "claimed_elsewhere": sorted(seen.claimed_elsewhere),
            "attempts": dict(sorted(seen.attempts.items())),
        },
        "outputs": output_hashes(run_dir),
    }
    (run_dir / RUN_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def _archive_inputs(root: Path, inputs_root: Path, receipts: list[Receipt]) -> list[dict[str, Any]]:
    """Each fund's file and companion as received, into the archive: the record's entries."""
    contract = load_contract()
    inputs = []
    for r in sorted(receipts, key=lambda r: r.fund_code):
        entry: dict[str, Any] = {"fund": r.fund_code, "file": r.file, "status": r.status}
        data_path = inputs_root / r.file
        data = _regular(inputs_root, data_path) if r.file.endswith(".csv") else None
        if data is not None:
            entry["sha256"] = put(root, data)
            companion = data_path.with_name(contract.companion_name(data_path.name))
            companion_data = _regular(inputs_root, companion)
            if companion_data is not None:
                entry["companion"] = str(Path(r.file).with_name(companion.name))
                entry["companion_sha256"] = put(root, companion_data)
        inputs.append(entry)
    return inputs


def _regular(root: Path, path: Path) -> bytes | None:
    """A received file's bytes; None when absent, or not a regular file inside ``root`` (a link
    in a drop zone is never archived: it could point at a secret)."""
    if not path.exists() and not path.is_symlink():
        return None
    try:
        return read_regular(root, path)
    except TransportError:
        return None
