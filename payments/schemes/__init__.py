"""Schemes as data: one reviewed TOML file per decree, validated and compiled at load.

A scheme declares its legal reference, reference months, the date ages are
computed on, the payment date, the remittance text, the dependent-child age
limit, other schemes it is not cumulable with, and its rules in priority order
(the first rule whose condition holds decides; one aid per household). Adding
the next decree is a new file here plus tests: no Python change.

Any mistake in a scheme file (unknown key, wrong type, a typo in a condition)
is a ``SchemeError`` naming the file and the key, raised at load time.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

if TYPE_CHECKING:  # conditions compile to Arrow expressions: imported when a scheme is parsed
    import pyarrow.compute as pc

#: What a SEPA remittance text may contain (the Latin character set of the EPC).
SEPA_TEXT = re.compile(r"^[A-Za-z0-9/\-?:().,'+ ]{1,140}$")

Cents = Annotated[int, Field(ge=0, strict=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleSpec(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    article: Annotated[str, Field(min_length=1)]
    #: The article's own words, as the Journal officiel prints them.
    text: str | None = None
    #: Where Legifrance has it: LEGIARTI/JORFARTI of the article, else the JORFTEXT or NOR.
    legifrance: str | None = None
    when: str
    #: Either a fixed base and a per-child amount, or ``amount``: an expression in cents.
    base_cents: Cents | None = None
    per_child_cents: Cents | None = None
    amount: str | None = None

    @model_validator(mode="after")
    def _one_way_to_pay(self) -> RuleSpec:
        fixed = self.base_cents is not None and self.per_child_cents is not None
        if self.amount is None and not fixed:
            raise ValueError("a rule needs base_cents and per_child_cents, or an amount")
        if self.amount is not None and (self.base_cents or self.per_child_cents):
            raise ValueError("a rule with an amount has no base_cents or per_child_cents")
        return self

    @field_validator("amount")
    @classmethod
    def _amount_compiles(cls, value: str | None) -> str | None:
        from payments.entitlement.conditions import ConditionError, compile_amount

        if value is not None:
            try:
                compile_amount(value)
            except ConditionError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("when")
    @classmethod
    def _compiles(cls, value: str) -> str:
        from payments.entitlement.conditions import ConditionError, compile_condition

        try:
            compile_condition(value)
        except ConditionError as exc:
            raise ValueError(str(exc)) from None
        return value


class ChildrenSpec(_Strict):
    max_age: Annotated[int, Field(gt=0, lt=30, strict=True)]


class SchemeSpec(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    version: Annotated[int, Field(ge=1, strict=True)]
    title: str
    legal_reference: str
    #: The decree on Legifrance (JORFTEXT…, or its NOR where that is what is known).
    legifrance: str | None = None
    reference_months: Annotated[
        list[Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]], Field(min_length=1)
    ]
    age_date: date
    payment_date: date
    remittance: str
    not_cumulable_with: list[str] = []
    children: ChildrenSpec
    rules: Annotated[list[RuleSpec], Field(min_length=1)]

    @field_validator("remittance")
    @classmethod
    def _sepa_text(cls, value: str) -> str:
        if not SEPA_TEXT.match(value):
            raise ValueError(
                "must be 1-140 characters of the SEPA set (A-Z a-z 0-9 / - ? : ( ) . , ' + space)"
            )
        return value

    @model_validator(mode="after")
    def _unique_rules(self) -> SchemeSpec:
        ids = [r.id for r in self.rules]
        if len(set(ids)) != len(ids):
            raise ValueError(f"rule ids must be unique, got {ids}")
        return self


class SchemeError(ValueError):
    """A scheme file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Rule:
    """A compiled rule: its spec and its Arrow condition."""

    spec: RuleSpec
    condition: pc.Expression
    amount: pc.Expression | None = None  # cents, when the rule says ``amount``


@dataclass(frozen=True)
class Scheme:
    """A loaded, validated and compiled scheme."""

    spec: SchemeSpec
    rules: tuple[Rule, ...]
    source: str  # file it was loaded from, for messages and the audit trail
    text: str  # the file's exact text (archived with each run)

    @property
    def id(self) -> str:
        return self.spec.id

    def articles(self) -> dict[str, str]:
        """Each rule's article, by rule id: why a household was paid what it was."""
        return {r.id: r.article for r in self.spec.rules}


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


def parse_scheme(text: str, source: str) -> Scheme:
    """Validate and compile a scheme from its TOML text."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SchemeError(f"{source}: not valid TOML: {exc}") from None
    try:
        spec = SchemeSpec.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(
            f"{_where(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
        )
        raise SchemeError(f"{source}: {problems}") from None
    stem = Path(source).stem
    if stem != spec.id and not source.startswith("<"):
        raise SchemeError(f"{source}: id {spec.id!r} must match the file name {stem!r}")
    from payments.entitlement.conditions import compile_amount, compile_condition

    rules = tuple(
        Rule(r, compile_condition(r.when), compile_amount(r.amount) if r.amount else None)
        for r in spec.rules
    )
    return Scheme(spec=spec, rules=rules, source=source, text=text)


def scheme_ids() -> list[str]:
    """The schemes shipped with the package, by id."""
    folder = resources.files("payments.schemes")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def scheme_titles() -> dict[str, str]:
    """Each shipped scheme's title, by id, read without compiling its rules (the DAG's
    trigger form shows them at parse time, when no data library may be imported)."""
    folder = resources.files("payments.schemes")
    return {
        i: str(tomllib.loads(folder.joinpath(f"{i}.toml").read_text("utf-8")).get("title", i))
        for i in scheme_ids()
    }


def load_scheme(scheme_id: str, folder: Path | None = None) -> Scheme:
    """Load a shipped scheme by id (or from ``folder`` when given)."""
    if folder is not None:
        path = folder / f"{scheme_id}.toml"
        if not path.exists():
            raise SchemeError(f"no scheme {scheme_id!r} in {folder}")
        return parse_scheme(path.read_text("utf-8"), str(path))
    if scheme_id not in scheme_ids():
        raise SchemeError(f"unknown scheme {scheme_id!r}; known: {', '.join(scheme_ids())}")
    ref = resources.files("payments.schemes").joinpath(f"{scheme_id}.toml")
    return parse_scheme(ref.read_text("utf-8"), f"payments/schemes/{scheme_id}.toml")
