"""Write a generated sample to disk: one data file and companion per fund.

Funds are generated one after the other and each file is written, hashed and
released before the next starts, so memory is bounded by the largest fund, not
by the national total. Output is byte-identical for the same parameters.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from payments.contract import Companion, Contract, load_contract
from payments.registry import Fund, Registry, load_registry
from payments.sample.defects import (
    DEFECT_KINDS,
    TRUTH_SCHEMA,
    inject_row_defects,
    lines_with_non_ascii,
    reencode_lines_cp1252,
)
from payments.sample.households import Window, generate_households
from payments.sample.identities import NirAllocator, make_ibans

SAMPLE_META_DIR = "_sample"


@dataclass(frozen=True)
class SampleSpec:
    """Everything that determines a sample's bytes."""

    households: int
    seed: int
    window: Window
    defect_rate: float = 0.0
    funds: tuple[str, ...] = ()  # empty: every fund in the registry


@dataclass
class FileStat:
    fund_code: str
    path: str
    rows: int
    bytes: int
    sha256: str


@dataclass
class SampleResult:
    root: str
    households: int
    files: list[FileStat] = field(default_factory=list)
    defects: dict[str, int] = field(default_factory=dict)
    truth_path: str = ""

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["rows"] = self.rows
        return d


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` exactly (largest remainders).

    Ties are broken by position so the split is deterministic.
    """
    w = np.array(weights, dtype=np.int64)
    exact = total * w
    base = exact // w.sum()
    remainder = exact - base * w.sum()
    short = total - int(base.sum())
    order = np.lexsort((np.arange(len(w)), -remainder))
    base[order[:short]] += 1
    return [int(x) for x in base]


def _csv_bytes(table: pa.Table, contract: Contract) -> bytes:
    buf = io.BytesIO()
    buf.write(contract.header_line)
    # quoting "none": a value that would need quotes (a ';' in a name) is an error
    # here rather than a subtly different file.
    pacsv.write_csv(
        table,
        buf,
        pacsv.WriteOptions(
            include_header=False, delimiter=contract.delimiter, quoting_style="none"
        ),
    )
    return buf.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@dataclass
class _Writing:
    """What every fund's file of one sample shares while the sample is written."""

    spec: SampleSpec
    root: Path
    contract: Contract
    index_of: dict[str, int]
    #: IBANs several households share (an injected defect), drawn once nationally.
    shared_pool: pa.Array
    #: Fund code → file-level defect (``non_utf8``, ``truncated``).
    file_defects: dict[str, str]
    allocator: NirAllocator = field(default_factory=NirAllocator)
    truths: list[pa.Table] = field(default_factory=list)
    #: Households moving to the next fund's file (a household in two funds).
    movers: pa.Table | None = None


def write_sample(
    spec: SampleSpec,
    root: Path,
    *,
    registry: Registry | None = None,
    contract: Contract | None = None,
    on_fund: Callable[[Fund, int], None] | None = None,
) -> SampleResult:
    """Generate and write the sample under ``root`` (each fund's inbox folder)."""
    registry = registry or load_registry()
    contract = contract or load_contract()
    funds = registry.select(list(spec.funds) or None)
    counts = allocate(spec.households, [f.population_k for f in funds])
    national = np.random.default_rng([spec.seed, 0xA11])
    pool_size = max(1, int(spec.households * spec.defect_rate / 6 // 6))
    shared_pool, _ = make_ibans(national, pool_size)
    writing = _Writing(
        spec,
        root,
        contract,
        {f.code: i for i, f in enumerate(registry.funds)},
        shared_pool,
        _file_defects(national, spec.defect_rate, funds, counts),
    )
    result = SampleResult(root=str(root), households=spec.households)
    for pos, (fund, n) in enumerate(zip(funds, counts, strict=True)):
        stat = _write_fund(writing, fund, n, last=pos + 1 == len(funds))
        if stat is None:
            continue
        result.files.append(stat)
        if on_fund:
            on_fund(fund, n)
    _write_truth(writing, result)
    return result


def _file_defects(
    national: np.random.Generator, rate: float, funds: Sequence[Fund], counts: Sequence[int]
) -> dict[str, str]:
    """Which funds' files are sent broken (as a whole), about half the rate of them."""
    file_defects: dict[str, str] = {}
    if rate > 0:
        candidates = [f.code for f, n in zip(funds, counts, strict=True) if n >= 20]
        per_kind = max(1, round(rate * len(candidates) * 0.5))
        chosen = national.permutation(len(candidates))
        for i, kind in enumerate(("non_utf8", "truncated")):
            for j in chosen[i * per_kind : (i + 1) * per_kind]:
                file_defects[candidates[j]] = kind
    return file_defects


def _write_fund(writing: _Writing, fund: Fund, n: int, *, last: bool) -> FileStat | None:
    """One fund's file and its companion, with the sample's defects injected."""
    spec, contract = writing.spec, writing.contract
    name = contract.data_file_name(fund.code, spec.window.scheme_id)
    data_path = writing.root / fund.inbox / name
    ctl_path = writing.root / fund.inbox / contract.companion_name(name)
    if n == 0:
        for stale in (data_path, ctl_path):
            stale.unlink(missing_ok=True)
        return None
    index = writing.index_of[fund.code]
    table = generate_households(
        np.random.default_rng([spec.seed, index]),
        fund,
        n,
        spec.window,
        contract,
        writing.allocator,
    )
    defect_rng = np.random.default_rng([spec.seed, index, 1])
    injected = inject_row_defects(
        defect_rng,
        table,
        fund_code=fund.code,
        rate=spec.defect_rate,
        shared_pool=writing.shared_pool,
        movers_in=writing.movers,
        can_move_out=not last,
    )
    writing.movers = injected.movers_out
    writing.truths.append(injected.truth)
    data = _csv_bytes(injected.table, contract)
    file_defect = writing.file_defects.get(fund.code)
    if file_defect == "non_utf8":
        lines = lines_with_non_ascii(data, limit=3)
        data = reencode_lines_cp1252(data, lines)
        writing.truths.append(
            _file_truth(fund.code, lines, file_defect, "line re-encoded as cp1252")
        )
    companion = Companion(
        contract_version=contract.version,
        fund_code=fund.code,
        scheme_id=spec.window.scheme_id,
        file_name=name,
        row_count=n,
        byte_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        produced_at=f"{spec.window.as_of.isoformat()}T06:00:00+00:00",
    )
    sent = data
    if file_defect == "truncated":
        header_end = data.index(b"\n") + 1
        cut = header_end + int(defect_rng.integers(1, max(2, len(data) - header_end)))
        sent = data[:cut]
        detail = f"cut at byte {cut} of {len(data)}"
        writing.truths.append(_file_truth(fund.code, [0], file_defect, detail))
    _write_atomic(data_path, sent)
    _write_atomic(ctl_path, companion.to_json())
    return FileStat(
        fund_code=fund.code,
        path=str(data_path.relative_to(writing.root)),
        rows=n,
        bytes=len(sent),
        sha256=hashlib.sha256(sent).hexdigest(),
    )


def _write_truth(writing: _Writing, result: SampleResult) -> None:
    """The ground truth of every defect injected, and the sample's summary, under
    ``_sample/`` (what the tests check validation against)."""
    spec, root = writing.spec, writing.root
    truth = pa.concat_tables(writing.truths) if writing.truths else TRUTH_SCHEMA.empty_table()
    counts_by_kind = dict.fromkeys(DEFECT_KINDS, 0)
    if truth.num_rows:
        vc = truth.group_by("kind").aggregate([("line", "count")])
        for k, c in zip(
            vc.column("kind").to_pylist(), vc.column("line_count").to_pylist(), strict=True
        ):
            counts_by_kind[k] = c
    result.defects = counts_by_kind
    meta = root / SAMPLE_META_DIR
    meta.mkdir(parents=True, exist_ok=True)
    truth_path = meta / f"truth_{spec.window.scheme_id}.parquet"
    pq.write_table(truth, truth_path)
    result.truth_path = str(truth_path.relative_to(root))
    summary = {
        "spec": {
            "households": spec.households,
            "seed": spec.seed,
            "scheme_id": spec.window.scheme_id,
            "months": list(spec.window.months),
            "as_of": spec.window.as_of.isoformat(),
            "defect_rate": spec.defect_rate,
            "funds": list(spec.funds),
        },
        **result.to_dict(),
    }
    _write_atomic(
        meta / f"sample_{spec.window.scheme_id}.json",
        (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode(),
    )


def _file_truth(fund_code: str, lines: list[int], kind: str, detail: str) -> pa.Table:
    n = len(lines)
    return pa.table(
        {
            "fund_code": [fund_code] * n,
            "line": pa.array(lines, pa.int64()),
            "household_id": pa.array([None] * n, pa.string()),
            "kind": [kind] * n,
            "detail": [detail] * n,
        },
        schema=TRUTH_SCHEMA,
    )
