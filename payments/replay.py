"""``payments replay``: rebuild a finished run from its archive and compare, hash by hash.

The run record (``runs/<run_id>/run.json``) names every input by SHA-256, the
scheme text, the parameters and the ledger state the run read. The replay
takes those from the content-addressed archive only, recomputes the run in a
scratch folder (no ledger, no network), and compares every output file's hash
with the record — and the stored outputs with the record too, so an output
altered after the fact is caught as well as an altered input.
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from payments.archive import RUN_RECORD, archive_path, get, output_hashes, sha256_bytes
from payments.errors import PaymentsError
from payments.pipeline import conclude_run
from payments.run_ids import RUN_ID
from payments.run_spec import Gathered, LedgerRead, Recording, RunOptions
from payments.schemes import parse_scheme
from payments.sepa.profiles import load_profile
from payments.sepa.signing import Signer
from payments.validation.folder import validate_folder
from payments.validation.schema import Window


@dataclass
class ReplayReport:
    run_id: str
    replayed_run_id: str | None = None
    identical: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.replayed_run_id == self.run_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "replayed_run_id": self.replayed_run_id,
            "identical": len(self.identical),
            "problems": self.problems,
            "ok": self.ok,
        }


def _restore(root: Path, digest: str, target: Path, what: str, report: ReplayReport) -> None:
    """Copy an archived file into the scratch folder; an altered one is reported, then used."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        target.write_bytes(get(root, digest))
    except FileNotFoundError:
        report.problems.append(f"{what}: missing from the archive (sha256 {digest})")
    except ValueError:
        data = archive_path(root, digest).read_bytes()
        report.problems.append(
            f"{what}: archived bytes altered: SHA-256 {sha256_bytes(data)}, "
            f"the run recorded {digest}"
        )
        target.write_bytes(data)


def replay_run(
    root: Path, run_id: str, scratch: Path, *, secret: bytes, signer: Signer
) -> ReplayReport:
    """Recompute ``run_id`` from its archive under ``scratch``; report every difference."""
    if not RUN_ID.fullmatch(run_id):
        raise PaymentsError(f"{run_id!r} is not a payments run id: nothing replayed")
    report = ReplayReport(run_id)
    run_dir = root / "runs" / run_id
    record = json.loads((run_dir / RUN_RECORD).read_text())
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    _restore_inputs(root, record, scratch, report)
    scheme = parse_scheme(
        get(root, record["scheme_sha256"]).decode(), f"<archived {record['scheme_id']}>"
    )
    params = record["parameters"]
    staging = scratch / "runs" / ".staging-replay"
    validation = validate_folder(
        scratch,
        staging / "validation",
        scheme.id,
        Window.of(scheme),
        funds=params["funds"],
    )
    result = conclude_run(
        scratch,
        scheme,
        Gathered(staging, validation, inputs_root=scratch),
        secret=secret,
        signer=signer,
        recording=Recording(parameters={k: v for k, v in params.items() if k not in _DERIVED}),
        options=_options(params),
        replay=_ledger_read(root, record["ledger_read"]),
    )
    report.replayed_run_id = result.run_id
    if result.run_id != run_id:
        report.problems.append(f"run id: replay gives {result.run_id}, the run was {run_id}")
    _compare(record["outputs"], output_hashes(result.out_dir), output_hashes(run_dir), report)
    return report


def _restore_inputs(
    root: Path, record: dict[str, Any], scratch: Path, report: ReplayReport
) -> None:
    """Every archived input file and companion, back where the run read them."""
    for entry in record["inputs"]:
        if entry.get("sha256"):
            _restore(root, entry["sha256"], scratch / entry["file"], entry["file"], report)
        if entry.get("companion_sha256"):
            _restore(
                root,
                entry["companion_sha256"],
                scratch / entry["companion"],
                entry["companion"],
                report,
            )


def _options(params: dict[str, Any]) -> RunOptions:
    """The run's options, as its run record keeps them."""
    return RunOptions(
        created_at=datetime.fromisoformat(params["created_at"]),
        run_date=date.fromisoformat(params["run_date"]),
        max_transactions=int(params["max_transactions"]),
        bank_profile=load_profile(params["bank_profile"]) if params.get("bank_profile") else None,
    )


def _ledger_read(root: Path, read: dict[str, Any]) -> LedgerRead:
    """What the run read of the ledger and what the ledger decided, from the archive."""
    prior = (
        pq.read_table(io.BytesIO(get(root, read["prior_sha256"])))
        if read.get("prior_sha256")
        else None
    )
    return LedgerRead(
        prior,
        list(read["released"]),
        list(read["claimed_elsewhere"]),
        dict(read.get("attempts", {})),
    )


def _compare(
    recorded: dict[str, str],
    replayed: dict[str, str],
    stored: dict[str, str],
    report: ReplayReport,
) -> None:
    """Each output's hash as recorded, as replayed and as stored now: every difference."""
    for path in sorted(recorded.keys() | replayed.keys() | stored.keys()):
        want, got, kept = recorded.get(path), replayed.get(path), stored.get(path)
        if want is None:
            report.problems.append(f"{path}: not in the run record")
        elif got is None:
            report.problems.append(f"{path}: recorded, but the replay does not produce it")
        elif got != want:
            report.problems.append(f"{path}: replay gives SHA-256 {got}, the run recorded {want}")
        if want is not None and kept != want:
            report.problems.append(
                f"{path}: stored file {'missing' if kept is None else 'has SHA-256 ' + kept}, "
                f"the run recorded {want} (altered after the run)"
            )
        if want is not None and got == want and kept == want:
            report.identical.append(path)


#: Parameters the run record adds itself (not the run's own).
_DERIVED = frozenset({"funds", "created_at", "run_date", "max_transactions", "bank_profile"})
