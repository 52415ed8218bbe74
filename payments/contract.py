"""The input contract: what a fund's beneficiary file must look like.

The contract is data (``payments/reference/contract-<version>.toml``); this
module loads it and derives what code needs from it: the header, the Arrow
schema to read a file without letting any identifier be parsed as a number, and
the typed schema of accepted rows. docs/file-format.md documents the same file
for people; a test keeps the two in step.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import pyarrow as pa

CURRENT_VERSION = "1.1"
#: Versions a fund may still send; rows of an older one read with the newer columns empty.
SUPPORTED_VERSIONS = ("1.0", "1.1")

#: Arrow type of accepted values, per column kind. Money is int64 cents.
KIND_TYPES: dict[str, pa.DataType] = {
    "code": pa.string(),
    "text": pa.string(),
    "enum": pa.string(),
    "date": pa.date32(),
    "month": pa.string(),
    "cents": pa.int64(),
    "dates": pa.list_(pa.date32()),
}


@dataclass(frozen=True)
class Column:
    """One column of the contract."""

    name: str
    kind: str
    required: bool
    description: str
    example: str
    pattern: str | None = None
    values: tuple[str, ...] = ()

    @property
    def arrow_type(self) -> pa.DataType:
        """Type of the column once a row is accepted."""
        return KIND_TYPES[self.kind]


@dataclass(frozen=True)
class Contract:
    """A version of the input contract."""

    version: str
    encoding: str
    delimiter: str
    line_terminator: str
    list_separator: str
    file_name: str
    companion_suffix: str
    row_key: tuple[str, ...]
    columns: tuple[Column, ...]
    companion_fields: tuple[str, ...] = field(default=())

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def header_line(self) -> bytes:
        """The exact header row a file must start with."""
        return (self.delimiter.join(self.names) + self.line_terminator).encode(self.encoding)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def raw_schema(self) -> pa.Schema:
        """Every column as text: how a file is read before validation.

        Reading as text first is what keeps a NIR, a household number or an IBAN
        from ever being turned into a number (and losing leading zeros or 2A/2B).
        """
        return pa.schema([pa.field(c.name, pa.string()) for c in self.columns])

    def accepted_schema(self) -> pa.Schema:
        """Typed schema of rows that passed validation."""
        return pa.schema(
            [pa.field(c.name, c.arrow_type, nullable=not c.required) for c in self.columns]
        )

    def data_file_name(self, fund_code: str, scheme_id: str) -> str:
        return self.file_name.format(fund_code=fund_code, scheme_id=scheme_id)

    def companion_name(self, data_file_name: str) -> str:
        return data_file_name + self.companion_suffix


def _parse(doc: dict[str, Any]) -> Contract:
    columns = tuple(
        Column(
            name=c["name"],
            kind=c["kind"],
            required=bool(c["required"]),
            description=c["description"],
            example=str(c.get("example", "")),
            pattern=c.get("pattern"),
            values=tuple(c.get("values", ())),
        )
        for c in doc["columns"]
    )
    unknown = sorted({c.kind for c in columns} - KIND_TYPES.keys())
    if unknown:
        raise ValueError(f"contract {doc['version']}: unknown column kinds {unknown}")
    return Contract(
        version=doc["version"],
        encoding=doc["encoding"],
        delimiter=doc["delimiter"],
        line_terminator=doc["line_terminator"],
        list_separator=doc["list_separator"],
        file_name=doc["file_name"],
        companion_suffix=doc["companion_suffix"],
        row_key=tuple(doc["row_key"]),
        columns=columns,
        companion_fields=tuple(doc["companion"]["fields"]),
    )


@cache
def load_contract(version: str = CURRENT_VERSION) -> Contract:
    """Load a contract version shipped with the package."""
    ref = resources.files("payments.reference").joinpath(f"contract-{version}.toml")
    try:
        text = ref.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"unknown input contract version {version!r}") from None
    return _parse(tomllib.loads(text))


@dataclass(frozen=True)
class Companion:
    """The control file that travels with a data file (``<file>.ctl.json``).

    It carries what a receiver needs to prove the data file arrived whole and
    unaltered: its size, its row count (excluding the header) and its SHA-256.
    """

    contract_version: str
    fund_code: str
    scheme_id: str
    file_name: str
    row_count: int
    byte_size: int
    sha256: str
    produced_at: str

    def to_json(self) -> bytes:
        """Canonical bytes (sorted keys, fixed indent) so companions are reproducible."""
        return (json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> Companion:
        doc = json.loads(data.decode("utf-8"))
        if not isinstance(doc, dict):
            raise ValueError("companion is not a JSON object")
        missing = sorted(set(cls.__dataclass_fields__) - doc.keys())
        if missing:
            raise ValueError(f"companion lacks fields {missing}")
        return cls(**{k: doc[k] for k in cls.__dataclass_fields__})


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns in its order: an older contract's rows get the
    columns it did not have, empty (so every fund's outputs read alike)."""
    if table.schema.equals(schema):
        return table
    n = table.num_rows
    return pa.table(
        {
            f.name: table.column(f.name) if f.name in table.column_names else pa.nulls(n, f.type)
            for f in schema
        },
        schema=schema,
    )
