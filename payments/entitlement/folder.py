"""The shell of the compute stage: read validated funds, decide nationally, write outputs.

Reads ``<input>/<fund>/accepted.parquet`` (the validation stage's output),
builds household facts per fund (in threads: Arrow, polars and AES release
the GIL), decides nationally and writes to ``<out>/``:
``decisions.parquet`` (every household, no NIR), ``review.parquet`` (held
payments for finance), ``preview.json`` / ``preview.csv`` (the budget preview)
and ``compute.json`` (counts and the tie-out).
"""

from __future__ import annotations

import functools
import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from payments.entitlement.decide import decide_frame
from payments.entitlement.facts import BENEFITS, household_facts_frame
from payments.entitlement.holds import load_hold_policy
from payments.entitlement.preview import budget_preview, preview_rows
from payments.registry import Fund, load_registry
from payments.schemes import Scheme
from payments.statuses import Decision

if TYPE_CHECKING:
    from payments.validation.outputs import FundReport


@dataclass
class ComputeResult:
    scheme_id: str
    out_dir: Path
    preview: dict[str, Any]
    funds: list[str]
    #: The decisions as written to ``decisions.parquet`` (kept: reading them back cost seconds).
    frame: pl.DataFrame | None = field(default=None, repr=False, compare=False)

    @functools.cached_property
    def decisions(self) -> pa.Table | None:
        """The decisions as an Arrow table (converted once, when first asked for)."""
        return self.frame.to_arrow() if self.frame is not None else None

    def release(self) -> None:
        """Let the decisions go (the national step keeps only the columns it still needs)."""
        self.frame = None
        self.__dict__.pop("decisions", None)  # the cached Arrow copy, if one was made

    def to_dict(self) -> dict[str, Any]:
        return {"scheme_id": self.scheme_id, "funds": self.funds, "preview": self.preview}


def fund_facts(path: Path, scheme: Scheme, secret: bytes, overseas: bool) -> pl.DataFrame:
    """One fund's facts from its ``accepted.parquet`` (what ``compute_folder`` builds per fund)."""
    return household_facts_frame(pl.read_parquet(path), scheme, secret=secret, overseas=overseas)


class FactsAhead:
    """Each fund's facts, built as soon as its validation is done, while others are validated.

    Facts are a pure function of one fund's accepted rows (with the scheme and
    the key secret), so they need not wait for the national step. Validation
    runs in worker processes and leaves this process idle; building the facts
    here meanwhile (``threads`` at a time) takes most of that work off the
    national step. The key secret stays in this process. ``landed`` may be called from any thread;
    ``take`` waits for them all and hands them to ``compute_folder``.
    """

    def __init__(self, input_dir: Path, scheme: Scheme, secret: bytes, threads: int = 2) -> None:
        self._input_dir, self._scheme, self._secret = input_dir, scheme, secret
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="facts")
        self._futures: dict[str, Future[pl.DataFrame]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def landed(self, fund: Fund) -> None:
        """``fund``'s accepted rows are written: build its facts now.

        A pool tells of a finished job after its waiter has woken, so the
        last fund can land after ``take``: it is then left to
        ``compute_folder``, which builds the facts it was not given.
        """
        path = self._input_dir / fund.code / "accepted.parquet"
        with self._lock:
            if self._closed:
                return
            self._futures[fund.code] = self._pool.submit(
                fund_facts, path, self._scheme, self._secret, fund.overseas
            )

    def validated(self, fund: Fund, report: FundReport) -> None:
        """``validate_folder``'s ``on_done``: a fund with accepted rows lands."""
        if report.accepted:
            self.landed(fund)

    def take(self) -> dict[str, pl.DataFrame]:
        """Every landed fund's facts, by fund code (a failure is raised here).

        A fund whose ``accepted.parquet`` is gone by now (rejected after
        validation for the same bytes as another fund's) is left out, whatever
        became of its facts.
        """
        try:
            with self._lock:
                self._closed = True
                futures, self._futures = self._futures, {}
            return {
                code: future.result()
                for code, future in futures.items()
                if (self._input_dir / code / "accepted.parquet").exists()
            }
        finally:
            self.close()

    def close(self) -> None:
        """Stop: facts not started are not built, those being built are waited for."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> FactsAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _concat_column_by_column(frames: list[pl.DataFrame], threads: int = 1) -> pl.DataFrame:
    """The funds' facts as one contiguous frame, never holding two copies of all of them.

    ``decide`` runs faster, and peaks lower, on contiguous columns (polars
    re-aligned 101 chunks per column mid-way, a copy of every column); a plain
    concatenation would hold the funds' frames and the result at once. Here
    each column is concatenated, then the funds' pieces of it are let go;
    ``threads`` columns at a time (polars copies outside the GIL).
    """
    names = frames[0].columns
    pieces: list[list[pl.Series | None]] = [list(f.get_columns()) for f in frames]
    frames.clear()

    def column(j: int) -> pl.Series:
        parts = [piece for p in pieces if (piece := p[j]) is not None]
        out: pl.Series = pl.concat(parts, rechunk=True)
        for p in pieces:
            p[j] = None  # the last reference to this fund's piece
        return out

    if threads > 1:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            columns = list(pool.map(column, range(len(names))))
    else:
        columns = [column(j) for j in range(len(names))]
    return pl.DataFrame(columns)


def compute_folder(
    input_dir: Path,
    out_dir: Path,
    scheme: Scheme,
    *,
    secret: bytes,
    run_date: date,
    prior: pa.Table | None = None,
    released: list[str] | None = None,
    workers: int = 1,
    facts: dict[str, pl.DataFrame] | None = None,
) -> ComputeResult:
    """Compute the decisions of every validated fund under ``input_dir``.

    ``prior``: the keys the ledger already paid; ``released``: the claimant keys
    of holds finance released (:func:`payments.ledger.claims.prior_payments`,
    ``released_keys``). ``facts``: funds' facts already built (``FactsAhead``,
    by fund code); the others are built here. The dict is emptied as the facts
    are taken, so that each fund's are let go once joined (the caller keeping
    them would hold a second national copy at the peak). Only funds whose
    ``accepted.parquet`` is still there count: the facts of a fund rejected
    since (the same bytes as another fund's) are left in the dict, unused.
    """
    registry = load_registry()
    holds = load_hold_policy()
    funds = [f for f in registry.funds if (input_dir / f.code / "accepted.parquet").exists()]
    tables = _every_fund_facts(input_dir, funds, scheme, secret, workers, facts or {})
    if not tables:
        raise FileNotFoundError(f"no accepted.parquet under {input_dir}")
    joined = _concat_column_by_column(tables, threads=workers)
    df = decide_frame(
        joined,
        scheme,
        holds=holds,
        fund_order=registry.codes,
        run_date=run_date,
        prior=prior,
        released=released or (),
    )
    del joined  # the decisions carry what is needed: free the facts before writing
    out_dir.mkdir(parents=True, exist_ok=True)
    # polars' writer (multithreaded, no statistics), faster than pyarrow's
    # defaults; pyarrow reads it back to the same table. Not compressed: most
    # of the bytes are keys and IBANs, which do not compress.
    df.write_parquet(out_dir / "decisions.parquet", compression="uncompressed", statistics=False)
    pq.write_table(_review(df, scheme).to_arrow(), out_dir / "review.parquet")
    preview = budget_preview(df)
    (out_dir / "preview.json").write_text(json.dumps(preview, indent=2, sort_keys=True) + "\n")
    pacsv.write_csv(
        preview_rows(preview), out_dir / "preview.csv", pacsv.WriteOptions(delimiter=";")
    )
    result = ComputeResult(scheme.id, out_dir, preview, [f.code for f in funds], df)
    summary = {
        "scheme_id": scheme.id,
        "scheme_version": scheme.spec.version,
        "run_date": run_date.isoformat(),
        "holds_version": holds.version,
        "funds": result.funds,
        "national": preview["national"],
    }
    (out_dir / "compute.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return result


def _every_fund_facts(
    input_dir: Path,
    funds: list[Fund],
    scheme: Scheme,
    secret: bytes,
    workers: int,
    ready: dict[str, pl.DataFrame],
) -> list[pl.DataFrame]:
    """Every fund's facts in registry order: taken from ``ready`` (emptied as they are
    taken) or built here, ``workers`` threads at a time."""
    args = [
        (input_dir / f.code / "accepted.parquet", scheme, secret, f.overseas)
        for f in funds
        if f.code not in ready
    ]
    if workers > 1 and len(args) > 1:
        # Threads, not processes: the work is in Arrow, polars and AES, which
        # release the GIL, and the facts tables stay in this process instead of
        # being pickled back from workers (that copy cost more than it saved).
        # Registry order, not largest first: that balanced the threads no better
        # here and raised the peak memory (more large funds' facts in flight).
        with ThreadPoolExecutor(max_workers=workers) as pool:
            built = list(pool.map(fund_facts, *zip(*args, strict=True)))
    else:
        built = [fund_facts(*a) for a in args]
    made = iter(built)
    del built  # ``made`` holds them until each is taken
    return [ready.pop(f.code) if f.code in ready else next(made) for f in funds]


def _review(df: pl.DataFrame, scheme: Scheme) -> pl.DataFrame:
    """The review list finance reads: why each held household is entitled (the rule,
    its article, the facts the rule read) and why it is held."""
    return df.filter(pl.col("status") == Decision.HELD).select(
        "scheme_id",
        "fund_code",
        "household_id",
        "claimant_key",
        "reason",
        "hold_reasons",
        "rule_id",
        pl.col("rule_id").replace_strict(scheme.articles(), default=None).alias("article"),
        "entitled_cents",
        "months",
        "claimant_age",
        "spouse_age",
        "children",
        *BENEFITS,
        "iban",
        "account_holder",
        "bank_details_changed_on",
    )
