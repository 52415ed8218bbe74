"""Receiving fund files: is this file whole, unaltered and in the contract's shape?

File-level checks only (row-level validation is ``payments.validation``'s job):
a file that fails here is rejected *as a file*, with a reason code and a
sentence naming the file (and line where there is one), and the other funds go
on. A file that passes is read with every column as text, so no identifier is
ever turned into a number.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv

from payments.contract import SUPPORTED_VERSIONS, Companion, Contract, load_contract
from payments.registry import Fund
from payments.statuses import FundFile
from payments.transport.base import TransportError
from payments.transport.local import read_regular


class FileError(StrEnum):
    """Why a whole file was rejected. Codes are stable: reports and tests use them."""

    FILE_MISSING = "file_missing"
    COMPANION_MISSING = "companion_missing"
    COMPANION_INVALID = "companion_invalid"
    CONTRACT_VERSION = "contract_version"
    WRONG_FUND = "wrong_fund"
    WRONG_SCHEME = "wrong_scheme"
    SIZE_MISMATCH = "size_mismatch"
    SHA256_MISMATCH = "sha256_mismatch"
    ENCODING = "encoding"
    HEADER = "header"
    ROW_COUNT = "row_count"
    EMPTY = "empty"
    DUPLICATE_CONTENT = "duplicate_content"
    UNREADABLE = "unreadable"
    LINE_ENDINGS = "line_endings"
    NOT_A_FILE = "not_a_file"


@dataclass
class Receipt:
    """What happened to one fund's file."""

    fund_code: str
    file: str
    status: str  # a FundFile
    error: str | None = None
    message: str | None = None
    rows: int = 0
    bytes: int = 0
    sha256: str | None = None
    details: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == FundFile.RECEIVED


class RejectedFile(Exception):
    def __init__(self, error: FileError, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


def _is_utf8(encoding: str) -> bool:
    return encoding.replace("-", "").replace("_", "").lower() == "utf8"


def _valid_utf8(data: bytes, encoding: str) -> bool:
    """Arrow's vectorised UTF-8 check (several times Python's decode); False when unsure."""
    if not _is_utf8(encoding):
        return False
    offsets = pa.py_buffer(np.array([0, len(data)], np.int64).tobytes())
    text = pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def check_file(
    data: bytes,
    companion_bytes: bytes,
    *,
    file_name: str,
    fund: Fund,
    scheme_id: str,
    contract: Contract,
    sha256: str | None = None,
) -> Companion:
    """All file-level checks on the bytes received; raises ``RejectedFile``.

    ``sha256``: the hex digest of ``data`` when the caller already has it
    (a fund file is hashed once).
    """
    companion = _companion(companion_bytes, file_name, fund, scheme_id, contract)
    _check_bytes(data, companion, file_name, sha256)
    _check_text(data, file_name, contract)
    _check_rows(data, companion, file_name, contract)
    return companion


def _companion(
    companion_bytes: bytes, file_name: str, fund: Fund, scheme_id: str, contract: Contract
) -> Companion:
    """The companion file, read, and for this contract, fund and scheme."""
    try:
        companion = Companion.from_json(companion_bytes)
    except (ValueError, UnicodeDecodeError, TypeError) as exc:
        raise RejectedFile(
            FileError.COMPANION_INVALID, f"{file_name}: companion file unreadable: {exc}"
        ) from None
    if companion.contract_version != contract.version:
        raise RejectedFile(
            FileError.CONTRACT_VERSION,
            f"{file_name}: contract version {companion.contract_version!r}, "
            f"expected one of {', '.join(SUPPORTED_VERSIONS)}",
        )
    if companion.fund_code != fund.code:
        raise RejectedFile(
            FileError.WRONG_FUND,
            f"{file_name}: companion says fund {companion.fund_code!r}, "
            f"file is filed under fund {fund.code!r}",
        )
    if companion.scheme_id != scheme_id:
        raise RejectedFile(
            FileError.WRONG_SCHEME,
            f"{file_name}: companion says scheme {companion.scheme_id!r}, run is {scheme_id!r}",
        )
    return companion


def _check_bytes(data: bytes, companion: Companion, file_name: str, sha256: str | None) -> None:
    """The bytes are those the companion announces: size, then SHA-256."""
    if len(data) != companion.byte_size:
        raise RejectedFile(
            FileError.SIZE_MISMATCH,
            f"{file_name}: {len(data)} bytes received, companion announces "
            f"{companion.byte_size} (truncated or altered in transit)",
        )
    digest = sha256 or hashlib.sha256(data).hexdigest()
    if digest != companion.sha256:
        raise RejectedFile(
            FileError.SHA256_MISMATCH,
            f"{file_name}: SHA-256 {digest} does not match the companion's "
            f"{companion.sha256} (file altered)",
        )


def _check_text(data: bytes, file_name: str, contract: Contract) -> None:
    """UTF-8, not empty, LF line endings, the contract's header."""
    try:
        if not _valid_utf8(data, contract.encoding):
            data.decode(contract.encoding)  # only to find where: raises
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise RejectedFile(
            FileError.ENCODING,
            f"{file_name}, line {line}: byte 0x{data[exc.start]:02x} is not valid "
            f"{contract.encoding.upper()} (file must be UTF-8)",
        ) from None
    if not data:
        raise RejectedFile(FileError.EMPTY, f"{file_name}: file is empty")
    carriage_return = data.find(b"\r")
    if carriage_return >= 0:
        line = data.count(b"\n", 0, carriage_return) + 1
        raise RejectedFile(
            FileError.LINE_ENDINGS,
            f"{file_name}, line {line}: carriage return found; lines must end with LF only "
            "(a Windows export with CRLF must be converted)",
        )
    if not data.startswith(contract.header_line):
        first = data.split(b"\n", 1)[0].decode(contract.encoding, errors="replace")
        got = first.split(contract.delimiter)
        want = contract.names
        diff = next(
            (i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b),
            min(len(got), len(want)),
        )
        raise RejectedFile(
            FileError.HEADER,
            f"{file_name}, line 1: header does not match contract {contract.version} "
            f"(column {diff + 1}: got {got[diff] if diff < len(got) else '(none)'!r}, "
            f"expected {want[diff] if diff < len(want) else '(none)'!r})",
        )


def _check_rows(data: bytes, companion: Companion, file_name: str, contract: Contract) -> None:
    """The last line is whole, and the rows are as many as the companion says (some)."""
    if not data.endswith(contract.line_terminator.encode()):
        raise RejectedFile(
            FileError.ROW_COUNT,
            f"{file_name}: last line is not terminated (file cut short)",
        )
    rows = data.count(contract.line_terminator.encode()) - 1
    if rows != companion.row_count:
        raise RejectedFile(
            FileError.ROW_COUNT,
            f"{file_name}: {rows} rows, companion announces {companion.row_count}",
        )
    if rows == 0:
        raise RejectedFile(FileError.EMPTY, f"{file_name}: header only, no rows")


@dataclass
class InvalidRow:
    """A line the CSV reader could not split into the contract's columns."""

    line: int
    text: str
    fields: int


@dataclass
class Rows:
    """A file's rows as text, with the file line of each and the unsplittable lines."""

    table: pa.Table
    lines: npt.NDArray[np.int64]
    invalid: list[InvalidRow] = field(default_factory=list)
    #: The contract version the file was written in (its companion says which).
    contract: Contract | None = None


def _read(
    data: bytes,
    contract: Contract,
    *,
    threads: bool,
    invalid: list[InvalidRow],
    check_utf8: bool = True,
) -> pa.Table:
    schema = contract.raw_schema()

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append(InvalidRow(row.number or 0, row.text, row.actual_columns))
        return "skip"

    return pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(
            column_names=schema.names, skip_rows=1, block_size=8 << 20, use_threads=threads
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=contract.delimiter,
            quote_char=False,
            ignore_empty_lines=False,
            invalid_row_handler=on_invalid,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=schema,
            # Only an empty field is missing. Arrow's default list also made
            # "NA", "N/A", "null", "NaN"… null: a claimant named Na, or a holder
            # written N/A, was quarantined as a missing value and shown empty.
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            check_utf8=check_utf8,
        ),
    )


def read_rows(data: bytes, contract: Contract, *, utf8_checked: bool = False) -> Rows:
    """Parse a checked file with every column as text (see ``Contract.raw_schema``).

    A line with the wrong number of fields does not fail the file: it is set
    aside with its line number (the reader only knows line numbers when
    single-threaded, so such a file is read a second time that way).

    ``utf8_checked``: the caller has found the whole file valid UTF-8
    (``check_file`` does), so the reader does not check every field again:
    that second check was a tenth to a quarter of the parse's CPU (40 fund
    files in one process). Fields cut from valid UTF-8 at an ASCII delimiter
    or line end are valid too.
    """
    invalid: list[InvalidRow] = []
    check = not (utf8_checked and _is_utf8(contract.encoding))
    table = _read(data, contract, threads=True, invalid=invalid, check_utf8=check)
    if invalid:
        invalid = []
        table = _read(data, contract, threads=False, invalid=invalid, check_utf8=check)
    total = table.num_rows + len(invalid)
    lines = np.arange(2, total + 2, dtype=np.int64)
    if invalid:
        lines = np.setdiff1d(lines, np.array([r.line for r in invalid], np.int64))
    return Rows(table=table, lines=lines, invalid=invalid)


def contract_of(companion_bytes: bytes, current: Contract) -> Contract:
    """The contract a file is written in: its companion's version when we still accept it.

    Anything else (an unknown version, an unreadable companion) gets ``current``,
    and ``check_file`` rejects the file with the companion's own reason.
    """
    try:
        version = json.loads(companion_bytes).get("contract_version")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return current
    if version == current.version or version not in SUPPORTED_VERSIONS:
        return current
    return load_contract(version)


def receive_fund(
    root: Path, fund: Fund, scheme_id: str, contract: Contract
) -> tuple[Receipt, Rows | None]:
    """Check and read one fund's file from its inbox under the storage root."""
    name = contract.data_file_name(fund.code, scheme_id)
    data_path = root / fund.inbox / name
    ctl_path = root / fund.inbox / contract.companion_name(name)
    rel = f"{fund.inbox}/{name}"
    if not data_path.exists() and not data_path.is_symlink():
        return Receipt(
            fund.code, rel, FundFile.MISSING, FileError.FILE_MISSING, f"{rel}: no file received"
        ), None
    if not ctl_path.exists():
        return Receipt(
            fund.code,
            rel,
            FundFile.REJECTED,
            FileError.COMPANION_MISSING,
            f"{rel}: companion {ctl_path.name} missing",
        ), None
    try:
        data, companion_bytes = read_regular(root, data_path), read_regular(root, ctl_path)
    except TransportError as exc:
        return Receipt(fund.code, rel, FundFile.REJECTED, FileError.NOT_A_FILE, str(exc)), None
    digest = hashlib.sha256(data).hexdigest()
    receipt = Receipt(fund.code, rel, FundFile.RECEIVED, bytes=len(data), sha256=digest)
    contract = contract_of(companion_bytes, contract)
    try:
        companion = check_file(
            data,
            companion_bytes,
            file_name=rel,
            fund=fund,
            scheme_id=scheme_id,
            contract=contract,
            sha256=digest,
        )
        rows = read_rows(data, contract, utf8_checked=True)  # check_file checked it
        rows.contract = contract
    except RejectedFile as exc:
        receipt.status, receipt.error, receipt.message = FundFile.REJECTED, exc.error, exc.message
        return receipt, None
    except pa.ArrowInvalid as exc:
        receipt.status, receipt.error = FundFile.REJECTED, FileError.UNREADABLE
        receipt.message = f"{rel}: not a readable CSV: {exc}"
        return receipt, None
    receipt.rows = rows.table.num_rows + len(rows.invalid)
    receipt.details = {"produced_at": companion.produced_at}
    return receipt, rows


def reject_duplicate_contents(receipts: list[Receipt]) -> None:
    """The same bytes filed under two funds: keep the first, reject the others."""
    seen: dict[str, str] = {}
    for r in receipts:
        if not r.ok or r.sha256 is None:
            continue
        if r.sha256 in seen:
            r.status, r.error = FundFile.REJECTED, FileError.DUPLICATE_CONTENT
            r.message = f"{r.file}: same content as {seen[r.sha256]} (submitted twice)"
        else:
            seen[r.sha256] = r.file
