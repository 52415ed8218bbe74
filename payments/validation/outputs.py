"""What validating a fund leaves behind: its report, its accepted rows and quarantine.

``<out>/<fund>/accepted.parquet``, ``quarantine.parquet``, ``quarantine.csv``
(for the fund's staff) and ``report.json``; the folder's totals are
:class:`FolderValidation` (``validation.json``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from payments.intake import Receipt
from payments.spreadsheet import write_csv
from payments.statuses import FundFile
from payments.validation.rows import RowValidation


@dataclass
class FundReport:
    """One fund's outcome; ``rows_read == accepted + quarantined`` always."""

    fund_code: str
    file: str
    status: str  # received | missing | rejected
    file_error: str | None
    message: str | None
    sha256: str | None
    rows_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    rules: dict[str, int] = field(default_factory=dict)

    @property
    def tie_out(self) -> bool:
        return self.rows_read == self.accepted + self.quarantined


@dataclass
class FolderValidation:
    scheme_id: str
    out_dir: Path
    funds: list[FundReport]
    receipts: list[Receipt]
    #: CPU seconds of each phase over the funds (``read``: hash, file checks, CSV
    #: parse; ``validate``: rules, quarantine, Parquet), measured where each fund
    #: ran. Not an output: ``make bench`` reports the phases apart with it.
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    def totals(self) -> dict[str, Any]:
        rules: Counter[str] = Counter()
        for f in self.funds:
            rules.update(f.rules)
        status = Counter(f.status for f in self.funds)
        return {
            "funds": {
                "expected": len(self.funds),
                **{k: status.get(k, 0) for k in FundFile},
            },
            "rows_read": sum(f.rows_read for f in self.funds),
            "accepted": sum(f.accepted for f in self.funds),
            "quarantined": sum(f.quarantined for f in self.funds),
            "rules": dict(sorted(rules.items())),
            "file_errors": dict(
                sorted(Counter(f.file_error for f in self.funds if f.file_error).items())
            ),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme_id": self.scheme_id,
            "totals": self.totals(),
            "funds": [{**asdict(f), "tie_out": f.tie_out} for f in self.funds],
        }


def write_quarantine_csv(quarantine: pa.Table, path: Path) -> None:
    """The quarantine as a CSV a fund's staff open in a spreadsheet (UTF-8 with BOM, no cell
    read as a formula)."""
    flat = quarantine.set_column(
        quarantine.schema.get_field_index("error_codes"),
        "error_codes",
        pc.binary_join(quarantine.column("error_codes"), "|"),
    )
    flat = flat.set_column(
        flat.schema.get_field_index("error_messages"),
        "error_messages",
        pc.binary_join(quarantine.column("error_messages"), " ; "),
    )
    write_csv(flat, path, bom=True)


#: Accepted-row columns LZ4 hardly shrinks (identifiers of digits, dates): stored
#: uncompressed: compressing them cost much of the write time for little
#: room; names, amounts and codes still shrink well.
UNCOMPRESSED = frozenset(
    {"claimant_nir", "spouse_nir", "iban", "claimant_birth_date", "spouse_birth_date"}
    | {"bank_details_changed_on", "children_birth_dates"}
)


def write_fund(out: Path, result: RowValidation, report: FundReport) -> None:
    out.mkdir(parents=True, exist_ok=True)
    # An intermediate read once by the compute stage: LZ4 where it pays, no
    # dictionaries, no statistics (half the defaults' write time, 20 % more bytes).
    pq.write_table(
        result.accepted,
        out / "accepted.parquet",
        compression={
            name: "none" if name in UNCOMPRESSED else "lz4" for name in result.accepted.column_names
        },
        use_dictionary=False,
        write_statistics=False,
    )
    pq.write_table(result.quarantine, out / "quarantine.parquet")
    write_quarantine_csv(result.quarantine, out / "quarantine.csv")
    (out / "report.json").write_text(
        json.dumps({**asdict(report), "tie_out": report.tie_out}, indent=2, sort_keys=True) + "\n"
    )
