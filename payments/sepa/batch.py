"""A batch of payment files for one run: per fund, split, written, signed, with a manifest.

Layout under the batch folder::

    manifest.json, manifest.json.p7s
    <fund>/<MsgId>.xml, <fund>/<MsgId>.xml.p7s

Everything is derived from the inputs: same decisions, scheme, run id, creation
time and key give byte-identical files, signatures and manifest.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
from cryptography.hazmat.primitives import hashes

from payments.identifiers.end_to_end import end_to_end_ids, scheme_code
from payments.registry import Fund, Registry, load_registry
from payments.schemes import Scheme
from payments.sepa.charset import NAME_MAX, creditor_names, transliterate_expr
from payments.sepa.layout import MANIFEST, TRANSACTIONS
from payments.sepa.pain001 import (
    FORMATS,
    FileHeader,
    Pain001Format,
    cents_text,
    file_parts,
    transactions_xml,
)
from payments.sepa.profiles import BankProfile, load_profile
from payments.sepa.signing import SIGNATURE_SUFFIX, Signer
from payments.statuses import Decision

DEFAULT_MAX_TRANSACTIONS = 100_000


@dataclass
class PaymentFile:
    path: str
    fund_code: str
    msg_id: str
    nb_of_txs: int
    ctrl_sum: str
    ctrl_sum_cents: int
    sha256: str
    bytes: int
    format: str


@dataclass
class BatchResult:
    out_dir: Path
    manifest: dict[str, Any]
    files: list[PaymentFile] = field(default_factory=list)
    excluded: list[dict[str, str]] = field(default_factory=list)
    #: What ``transactions.parquet`` holds: end_to_end_id, amount_cents, msg_id.
    transactions: pl.DataFrame = field(default_factory=pl.DataFrame, repr=False, compare=False)


def transactions(df: pl.DataFrame, scheme_id: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Payable rows as transactions, and those whose name cannot be written.

    The creditor is the account holder (as the bank knows the account); when that
    is empty after transliteration, the claimant's first and last names.
    """
    txs = df.select(
        "fund_code",
        "household_id",
        end_to_end_ids(
            scheme_id,
            pl.col("fund_code"),
            pl.col("household_id"),
            pl.col("attempt") if "attempt" in df.columns else None,
        ).alias("end_to_end_id"),
        pl.col("payable_cents").alias("amount_cents"),
        "iban",
        "bic",
    )
    creditor, bad_rows = creditor_names(df)
    txs = txs.insert_column(4, creditor.alias("creditor_name"))
    unwritable = np.zeros(txs.height, bool)
    unwritable[bad_rows.to_numpy()] = True
    if not unwritable.any():  # nearly always: filtering would copy every column for nothing
        return txs, txs.clear()
    mask = pl.Series(unwritable)
    return txs.filter(~mask), txs.filter(mask)


_NO_ROWS = pl.DataFrame(schema={"fund_code": pl.String, "household_id": pl.String})


#: The decisions' columns a payment file is written from (plus ``attempt`` when present).
PAYMENT_COLUMNS = (
    "status",
    "fund_code",
    "household_id",
    "payable_cents",
    "account_holder",
    "claimant_first_name",
    "claimant_last_name",
    "iban",
    "bic",
)


def _payable_by_fund(decisions: pa.Table | pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The payable rows, with only the columns a payment needs (converting all cost
    more), one frame per fund."""
    wanted = list(PAYMENT_COLUMNS)
    names = decisions.columns if isinstance(decisions, pl.DataFrame) else decisions.column_names
    if "attempt" in names:
        wanted.append("attempt")
    df = (
        decisions.select(wanted)
        if isinstance(decisions, pl.DataFrame)
        else pl.DataFrame(decisions.select(wanted))
    )
    by_fund = df.filter(pl.col("status") == Decision.PAYABLE).partition_by(
        "fund_code", as_dict=True
    )
    return {str(key[0]): rows for key, rows in by_fund.items()}


def _one_name(text: str) -> str:
    out = pl.select(transliterate_expr(pl.lit(text), NAME_MAX)).item()
    return str(out)


def _write_one(
    part: pl.DataFrame,
    header: FileHeader,
    path: Path,
    out_dir: Path,
    signer: Signer,
    remittance: str,
    fmt: Pain001Format,
) -> tuple[PaymentFile, pl.DataFrame]:
    """Write and sign one file from its bytes in memory (hashed and signed without re-reading)."""
    txs = part.to_arrow(compat_level=pl.CompatLevel.newest())  # views: cast once, below
    xml = transactions_xml(txs, remittance=remittance, fmt=fmt)
    parts = file_parts(header, xml, fmt=fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()  # once: the manifest's hash and the signature's
    with path.open("wb") as fh:
        for piece in parts:
            fh.write(piece)
            digest.update(piece)
    size = sum(len(piece) for piece in parts)
    path.with_name(path.name + SIGNATURE_SUFFIX).write_bytes(signer.sign_digest(digest.digest()))
    placed = part.select("end_to_end_id", "amount_cents").with_columns(
        pl.lit(header.msg_id).alias("msg_id")
    )
    return PaymentFile(
        path=str(path.relative_to(out_dir)),
        fund_code=path.parent.name,
        msg_id=header.msg_id,
        nb_of_txs=header.nb_of_txs,
        ctrl_sum=cents_text(header.ctrl_sum_cents),
        ctrl_sum_cents=header.ctrl_sum_cents,
        sha256=digest.hexdigest(),
        bytes=size,
        format=fmt.name,
    ), placed


@dataclass(frozen=True)
class FileLayout:
    """How a batch is cut into files and written.

    At most ``max_transactions`` per file, within the bank profile's count and
    byte limits; ``profile`` for every fund instead of each fund's own (the
    registry's ``bank_profile``); ``threads`` writer threads.
    """

    max_transactions: int = DEFAULT_MAX_TRANSACTIONS
    profile: BankProfile | None = None
    threads: int = 2


#: Each fund's bank profile, 100,000 transactions per file at most, two writers.
DEFAULT_LAYOUT = FileLayout()


@dataclass(frozen=True)
class _Batch:
    """What every fund's files of one batch share."""

    scheme: Scheme
    run_id: str
    created_at: datetime
    signer: Signer
    out_dir: Path
    layout: FileLayout
    #: Every MsgId's start: the scheme's code and a tag of the run id (the same
    #: run id, the same ids).
    msg_prefix: str


def write_batch(
    decisions: pa.Table | pl.DataFrame,
    scheme: Scheme,
    *,
    run_id: str,
    created_at: datetime,
    signer: Signer,
    out_dir: Path,
    registry: Registry | None = None,
    layout: FileLayout = DEFAULT_LAYOUT,
) -> BatchResult:
    """Write, sign and list every payment file of the payable households in ``decisions``.

    Each fund's files follow its bank's profile, or ``layout.profile`` for
    every fund: pain.001 version, header options, transactions per file.
    Each fund is one job (its names transliterated, its files cut, named,
    written and signed), run by ``layout.threads`` writer threads: polars'
    and Arrow's string kernels, file writes, SHA-256 and OpenSSL's signing
    release the GIL. Funds are independent and results are gathered in
    registry order, so the files and the manifest are the same bytes whatever
    the number of threads.
    """
    if layout.max_transactions < 1:
        raise ValueError("max_transactions must be at least 1")
    registry = registry or load_registry()
    run_tag = hashlib.sha256(run_id.encode()).hexdigest()[:8].upper()
    prefix = f"{scheme_code(scheme.id)}-{run_tag}"
    batch = _Batch(scheme, run_id, created_at, signer, out_dir, layout, prefix)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows_of = _payable_by_fund(decisions)

    def one_fund(fund: Fund) -> tuple[list[tuple[PaymentFile, pl.DataFrame]], pl.DataFrame]:
        rows = rows_of.get(fund.code)
        if rows is None:
            return [], _NO_ROWS
        return _fund_files(batch, fund, rows)

    if layout.threads > 1 and len(registry.funds) > 1:
        with ThreadPoolExecutor(max_workers=layout.threads) as pool:
            per_fund = list(pool.map(one_fund, registry.funds))  # map keeps registry order
    else:
        per_fund = [one_fund(fund) for fund in registry.funds]
    # Funds outside the registry get no file; their unwritable names are still listed.
    known = set(registry.codes)
    strays = [transactions(rows, scheme.id)[1] for c, rows in rows_of.items() if c not in known]
    written = [w for files, _ in per_fund for w in files]
    bad = pl.concat(
        [b for _, b in per_fund] + [s.select("fund_code", "household_id") for s in strays]
    )
    result = BatchResult(out_dir=out_dir, manifest={}, files=[w[0] for w in written])
    result.transactions = _placement([w[1] for w in written])
    result.transactions.write_parquet(out_dir / TRANSACTIONS)
    result.excluded = [
        {
            "fund_code": r["fund_code"],
            "household_id": r["household_id"],
            "reason": "name_not_transliterable",
        }
        for r in bad.select("fund_code", "household_id").iter_rows(named=True)
    ]
    result.manifest = _manifest(batch, result)
    manifest = (json.dumps(result.manifest, indent=2, sort_keys=True) + "\n").encode()
    (out_dir / MANIFEST).write_bytes(manifest)
    (out_dir / (MANIFEST + SIGNATURE_SUFFIX)).write_bytes(signer.sign(manifest))
    return result


def _fund_files(
    batch: _Batch, fund: Fund, rows: pl.DataFrame
) -> tuple[list[tuple[PaymentFile, pl.DataFrame]], pl.DataFrame]:
    """One fund's files, written and signed, and its households whose names cannot be
    written (excluded from the files, listed in the manifest)."""
    txs, bad = transactions(rows, batch.scheme.id)
    if not txs.get_column("household_id").is_sorted():  # decisions come sorted: no copy
        txs = txs.sort("household_id")
    debtor = _one_name(fund.debtor_name)
    bank = batch.layout.profile or load_profile(fund.bank_profile)
    per_file = bank.transactions_per_file(batch.layout.max_transactions)
    written = []
    for seq, start in enumerate(range(0, txs.height, per_file), start=1):
        part = txs.slice(start, per_file)
        msg_id = f"{batch.msg_prefix}-{fund.code}-{seq:03d}"
        header = FileHeader(
            msg_id=msg_id,
            created_at=batch.created_at,
            initiating_party=debtor,
            debtor_name=debtor,
            debtor_iban=fund.debtor_iban,
            debtor_bic=fund.debtor_bic,
            execution_date=batch.scheme.spec.payment_date,
            nb_of_txs=part.height,
            ctrl_sum_cents=int(part.get_column("amount_cents").sum()),
            batch_booking=bank.batch_booking,
            service_level=bank.service_level,
            local_instrument=bank.local_instrument,
        )
        path = batch.out_dir / fund.code / f"{msg_id}.xml"
        written.append(
            _write_one(
                part,
                header,
                path,
                batch.out_dir,
                batch.signer,
                batch.scheme.spec.remittance,
                FORMATS[bank.pain001],
            )
        )
    return written, bad.select("fund_code", "household_id")


def _placement(placed: list[pl.DataFrame]) -> pl.DataFrame:
    """Each transaction's file: end-to-end id, amount and MsgId (``transactions.parquet``)."""
    if placed:
        return pl.concat(placed)
    return pl.DataFrame(
        schema={"end_to_end_id": pl.String, "amount_cents": pl.Int64, "msg_id": pl.String}
    )


def _manifest(batch: _Batch, result: BatchResult) -> dict[str, Any]:
    """The batch's manifest: every file with its hash and sums, the totals, the exclusions."""
    total = sum(f.ctrl_sum_cents for f in result.files)
    formats = sorted({f.format for f in result.files})
    return {
        # the batch's one version; each file says its own too (funds may bank differently)
        "format": formats[0] if len(formats) == 1 else "mixed",
        "scheme_id": batch.scheme.id,
        "scheme_version": batch.scheme.spec.version,
        "run_id": batch.run_id,
        "created_at": batch.created_at.isoformat(),
        "execution_date": batch.scheme.spec.payment_date.isoformat(),
        "signer_sha256": batch.signer.certificate.fingerprint(hashes.SHA256()).hex(),
        "files": [asdict(f) for f in result.files],
        "totals": {
            "files": len(result.files),
            "nb_of_txs": sum(f.nb_of_txs for f in result.files),
            "ctrl_sum": cents_text(total),
            "ctrl_sum_cents": total,
        },
        "excluded": result.excluded,
    }
