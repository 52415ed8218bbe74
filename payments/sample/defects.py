"""Errors real fund files carry, injected on purpose so validation can be tested.

Row-level defects rewrite a few rows of a generated table; file-level defects
mutate the bytes of a written file. Every injection is recorded in a *truth*
table (fund, line, household, kind, detail) so tests can check that each one
ends where it should (quarantine, file rejection, deduplication, fraud hold).
Line numbers are file lines: the header is line 1, the first row line 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from payments.sample.arrowtext import concat, zpad

I64 = npt.NDArray[np.int64]

#: Row-level defect kinds, in the order they are assigned to picked rows.
ROW_DEFECTS: tuple[str, ...] = (
    "bad_nir_key",  # NIR whose key does not match its body
    "bad_iban",  # one digit of the account changed: RIB key and mod-97 both fail
    "missing_field",  # a required field left empty
    "duplicate_in_file",  # the same household row sent twice in one file
    "moved_between_funds",  # household that moved: present in two funds' files
    "shared_iban",  # several households paid into one account (fraud pattern)
)
#: File-level defect kinds: the whole file is affected.
FILE_DEFECTS: tuple[str, ...] = ("non_utf8", "truncated")
DEFECT_KINDS: tuple[str, ...] = ROW_DEFECTS + FILE_DEFECTS

#: Required fields the ``missing_field`` defect empties.
BLANKABLE: tuple[str, ...] = (
    "claimant_nir",
    "claimant_last_name",
    "claimant_birth_date",
    "iban",
    "account_holder",
)

TRUTH_SCHEMA = pa.schema(
    [
        ("fund_code", pa.string()),
        ("line", pa.int64()),
        ("household_id", pa.string()),
        ("kind", pa.string()),
        ("detail", pa.string()),
    ]
)


@dataclass
class RowDefectResult:
    table: pa.Table
    truth: pa.Table
    movers_out: pa.Table  # rows that also appear in the next fund's file


def _truth(
    fund_code: str,
    rows: I64,
    table: pa.Table,
    kind: str,
    detail: pa.Array | pa.ChunkedArray | str,
) -> pa.Table:
    n = len(rows)
    if isinstance(detail, str):
        det = pa.array([detail] * n, pa.string())
    elif isinstance(detail, pa.ChunkedArray):
        det = detail.combine_chunks()
    else:
        det = detail
    return pa.table(
        {
            "fund_code": pa.array([fund_code] * n, pa.string()),
            "line": pa.array(rows + 2, pa.int64()),
            "household_id": table.column("household_id").take(pa.array(rows)),
            "kind": pa.array([kind] * n, pa.string()),
            "detail": det,
        },
        schema=TRUTH_SCHEMA,
    )


def _mask(n: int, rows: I64) -> pa.Array:
    m = np.zeros(n, bool)
    m[rows] = True
    return pa.array(m)


def _set_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def inject_row_defects(
    rng: np.random.Generator,
    table: pa.Table,
    *,
    fund_code: str,
    rate: float,
    shared_pool: pa.Array,
    movers_in: pa.Table | None,
    can_move_out: bool,
) -> RowDefectResult:
    """Overlay row-level defects on ``table`` (about ``rate`` of its rows).

    ``movers_in`` are households the previous fund also sent; they replace rows
    of this fund (keeping this fund's household numbers). ``shared_pool`` holds
    the few accounts that ``shared_iban`` rows all pay into, across funds. The
    kinds are drawn from ``rng`` in a fixed order: the order is what makes a
    seed give the same bytes.
    """
    n = table.num_rows
    truths: list[pa.Table] = []
    taken = np.zeros(n, bool)
    if movers_in is not None and movers_in.num_rows and n:
        table = _take_movers(rng, table, movers_in, fund_code, taken, truths)
    kinds = [k for k in ROW_DEFECTS if can_move_out or k != "moved_between_funds"]
    by_kind = _pick_rows(rng, n, rate, kinds, taken)
    none = np.array([], np.int64)
    for kind, inject in (
        ("bad_nir_key", _bad_nir_key),
        ("bad_iban", _bad_iban),
        ("missing_field", _missing_field),
    ):
        rows = by_kind.get(kind, none)
        if len(rows):
            table = inject(rng, table, rows, fund_code, truths)
    rows = by_kind.get("shared_iban", none)
    if len(rows):
        table = _shared_iban(rng, table, rows, fund_code, truths, shared_pool)
    movers_out = table.slice(0, 0)
    rows = by_kind.get("moved_between_funds", none)
    if len(rows):
        movers_out = table.take(pa.array(rows))
        truths.append(_truth(fund_code, rows, table, "moved_between_funds", "moved to next fund"))
    # Last, so that a duplicated row is an exact copy of a clean one, and of an
    # *earlier* one: the first occurrence is the one a receiver keeps.
    table = _duplicates(
        rng, table, by_kind.get("duplicate_in_file", none), taken, fund_code, truths
    )
    truth = pa.concat_tables(truths) if truths else TRUTH_SCHEMA.empty_table()
    return RowDefectResult(table=table, truth=truth, movers_out=movers_out)


def _take_movers(
    rng: np.random.Generator,
    table: pa.Table,
    movers_in: pa.Table,
    fund_code: str,
    taken: npt.NDArray[np.bool_],
    truths: list[pa.Table],
) -> pa.Table:
    """Households the previous fund also sent replace random rows of this fund."""
    n = table.num_rows
    m = min(movers_in.num_rows, n // 2)
    rows = np.sort(rng.choice(n, size=m, replace=False))
    taken[rows] = True
    incoming = movers_in.slice(0, m)
    incoming = _set_column(
        incoming, "household_id", table.column("household_id").take(pa.array(rows))
    )
    incoming = _set_column(incoming, "fund_code", pa.array([fund_code] * m, pa.string()))
    index = np.arange(n)
    index[rows] = n + np.arange(m)
    table = pa.concat_tables([table, incoming]).take(pa.array(index))
    detail = concat("also sent by fund ", movers_in.column("fund_code").slice(0, m))
    truths.append(_truth(fund_code, rows, table, "moved_between_funds", detail))
    return table


def _pick_rows(
    rng: np.random.Generator,
    n: int,
    rate: float,
    kinds: list[str],
    taken: npt.NDArray[np.bool_],
) -> dict[str, npt.NDArray[np.int64]]:
    """The rows each kind of defect goes to: about ``rate`` of the free rows."""
    free = np.flatnonzero(~taken)
    k = min(int(rng.binomial(n, rate)) if rate > 0 else 0, len(free) // 2)
    picked = np.sort(rng.choice(free, size=k, replace=False)) if k else np.array([], np.int64)
    taken[picked] = True
    # Kinds in turn from a random start, so small funds do not all get the first kind.
    start = int(rng.integers(0, len(kinds)))
    assigned = rng.permutation((np.arange(k) + start) % len(kinds))
    return {kind: picked[assigned == i] for i, kind in enumerate(kinds)}


def _bad_nir_key(
    rng: np.random.Generator,
    table: pa.Table,
    rows: npt.NDArray[np.int64],
    fund_code: str,
    truths: list[pa.Table],
) -> pa.Table:
    """The claimant's NIR with a wrong control key."""
    n = table.num_rows
    nir = table.column("claimant_nir").combine_chunks()
    key = pc.cast(pc.utf8_slice_codeunits(nir, 13, 15), pa.int64()).to_numpy()
    wrong = (key - 1 + rng.integers(1, 97, n)) % 97 + 1
    bad = concat(pc.utf8_slice_codeunits(nir, 0, 13), zpad(wrong, 2))
    table = _set_column(table, "claimant_nir", pc.if_else(_mask(n, rows), bad, nir))
    truths.append(_truth(fund_code, rows, table, "bad_nir_key", "claimant_nir"))
    return table


def _bad_iban(
    rng: np.random.Generator,
    table: pa.Table,
    rows: npt.NDArray[np.int64],
    fund_code: str,
    truths: list[pa.Table],
) -> pa.Table:
    """An IBAN with one digit changed (its mod-97 check fails)."""
    n = table.num_rows
    iban = table.column("iban").combine_chunks()
    digit = pc.cast(pc.utf8_slice_codeunits(iban, 20, 21), pa.int64()).to_numpy()
    changed = (digit + rng.integers(1, 10, n)) % 10
    bad = concat(
        pc.utf8_slice_codeunits(iban, 0, 20),
        zpad(changed, 1),
        pc.utf8_slice_codeunits(iban, 21, 40),
    )
    table = _set_column(table, "iban", pc.if_else(_mask(n, rows), bad, iban))
    truths.append(_truth(fund_code, rows, table, "bad_iban", "iban"))
    return table


def _missing_field(
    rng: np.random.Generator,
    table: pa.Table,
    rows: npt.NDArray[np.int64],
    fund_code: str,
    truths: list[pa.Table],
) -> pa.Table:
    """One required field left empty, a different one per row."""
    n = table.num_rows
    which = rng.integers(0, len(BLANKABLE), len(rows))
    for i, name in enumerate(BLANKABLE):
        sub = rows[which == i]
        if len(sub):
            col = table.column(name).combine_chunks()
            null = pa.scalar(None, col.type)
            table = _set_column(table, name, pc.if_else(_mask(n, sub), null, col))
            truths.append(_truth(fund_code, sub, table, "missing_field", name))
    return table


def _shared_iban(
    rng: np.random.Generator,
    table: pa.Table,
    rows: npt.NDArray[np.int64],
    fund_code: str,
    truths: list[pa.Table],
    shared_pool: pa.Array,
) -> pa.Table:
    """Rows paying into one of the few accounts many households share (no BIC)."""
    n = table.num_rows
    pool_idx = rng.integers(0, len(shared_pool), n)
    shared = shared_pool.take(pa.array(pool_idx))
    mask = _mask(n, rows)
    table = _set_column(
        table, "iban", pc.if_else(mask, shared, table.column("iban").combine_chunks())
    )
    table = _set_column(
        table,
        "bic",
        pc.if_else(mask, pa.scalar(None, pa.string()), table.column("bic").combine_chunks()),
    )
    truths.append(_truth(fund_code, rows, table, "shared_iban", shared.take(pa.array(rows))))
    return table


def _duplicates(
    rng: np.random.Generator,
    table: pa.Table,
    rows: npt.NDArray[np.int64],
    taken: npt.NDArray[np.bool_],
    fund_code: str,
    truths: list[pa.Table],
) -> pa.Table:
    """Rows replaced by an exact copy of an earlier clean row (rows with no clean row
    before them are left as they are)."""
    clean = np.flatnonzero(~taken)
    before = np.searchsorted(clean, rows)
    rows, before = rows[before > 0], before[before > 0]
    if not len(rows):
        return table
    sources = clean[(rng.random(len(rows)) * before).astype(np.int64)]
    index = np.arange(table.num_rows)
    index[rows] = sources
    table = table.take(pa.array(index))
    detail = concat("copy of line ", pc.cast(pa.array(sources + 2), pa.string()))
    truths.append(_truth(fund_code, rows, table, "duplicate_in_file", detail))
    return table


def reencode_lines_cp1252(data: bytes, lines: list[int]) -> bytes:
    """Re-encode the given file lines as Windows-1252, as a misconfigured export would."""
    parts = data.split(b"\n")
    for line in lines:
        i = line - 1
        parts[i] = parts[i].decode("utf-8").encode("cp1252", errors="replace")
    return b"\n".join(parts)


def lines_with_non_ascii(data: bytes, limit: int) -> list[int]:
    """Up to ``limit`` data lines (1-based) holding non-ASCII text, in file order."""
    found: list[int] = []
    start = data.index(b"\n") + 1
    line = 2
    while start < len(data) and len(found) < limit:
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        if not data[start:end].isascii():
            found.append(line)
        start, line = end + 1, line + 1
    return found
