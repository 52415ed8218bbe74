"""A small, safe rule language for schemes, compiled to Arrow expressions.

Conditions read like Python: ``rsa_cents > 0 and (children > 0 or couple)``,
``claimant_student_status in ('none', 'apprentice')``. Amounts, in integer
cents, too: ``15245 * (150 + 30 * max(children - 1, 0)) // 100``. They are
parsed with ``ast`` and only these forms are allowed: ``and``/``or``/``not``,
comparisons (chained too), ``in``/``not in`` with a tuple of literals,
``+``, ``-`` and ``*`` of numbers, ``//`` by a positive integer (the
quotient rounded down: "au centime inférieur"), ``min(…)`` and ``max(…)`` of
numbers, ``a if condition else b``, integer and string literals, and names of
household facts. Anything else, or an unknown fact, is an error naming the
offending text, raised when the scheme is loaded, never while paying. There
are no floats: every amount stays integer cents.

A comparison with a missing value (no spouse: ``spouse_age`` is null) is false.
"""

from __future__ import annotations

import ast
import difflib
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

#: Household facts a condition may use, and their Arrow types.
FACTS: dict[str, pa.DataType] = {
    "rsa_cents": pa.int64(),
    "rso_cents": pa.int64(),
    "ass_cents": pa.int64(),
    "aer_cents": pa.int64(),
    "prime_forfaitaire_cents": pa.int64(),
    "apl_cents": pa.int64(),
    "alf_cents": pa.int64(),
    "als_cents": pa.int64(),
    "housing_cents": pa.int64(),  # apl + alf + als
    "claimant_age": pa.int64(),  # whole years on the scheme's age date
    "spouse_age": pa.int64(),  # null without a spouse
    "youngest_adult_age": pa.int64(),  # the younger of claimant and spouse
    "children": pa.int64(),  # dependent children on the age date
    "couple": pa.bool_(),
    "overseas": pa.bool_(),
    "claimant_student_status": pa.string(),
    # contract 1.1; unknown (a 1.0 file, or no partner) reads as 'none': nothing excludes them
    "spouse_student_status": pa.string(),
    "fund_code": pa.string(),  # the fund paying (Mayotte: '976')
    # derived from the facts above when rules are evaluated (not stored)
    "adults": pa.int64(),  # 1, or 2 with a spouse or partner
    "persons": pa.int64(),  # adults + dependent children: the household's size
}
#: Facts computed from the others at evaluation time (``with_derived_facts``).
DERIVED = ("adults", "persons")


class ConditionError(ValueError):
    """A condition that cannot be compiled; the message says where and why."""


_COMPARE = {
    ast.Eq: pc.equal,
    ast.NotEq: pc.not_equal,
    ast.Lt: pc.less,
    ast.LtE: pc.less_equal,
    ast.Gt: pc.greater,
    ast.GtE: pc.greater_equal,
}


def _kind(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "yes/no"
    return "text" if pa.types.is_string(t) else "number"


def _literal(node: ast.expr, text: str) -> tuple[Any, str]:
    if isinstance(node, ast.Constant) and not isinstance(node.value, bool):
        if isinstance(node.value, int):
            return node.value, "number"
        if isinstance(node.value, str):
            return node.value, "text"
    raise ConditionError(f"{text!r}: expected a number or a quoted text, got {ast.unparse(node)!r}")


def _need(kind: str, want: str, node: ast.expr, text: str) -> None:
    if kind != want:
        raise ConditionError(f"{text!r}: {ast.unparse(node)!r} is {kind}, {want} expected here")


Compiled = tuple[pc.Expression, str]


def _compile(node: ast.expr, text: str) -> Compiled:
    """Compile ``node``; returns the expression and its kind (number, text, yes/no).

    Only the node types below are allowed; anything else is refused with the
    condition's text, so a scheme file can never run arbitrary code.
    """
    if isinstance(node, ast.BoolOp):
        return _bool_op(node, text)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        expr, kind = _compile(node.operand, text)
        _need(kind, "yes/no", node.operand, text)
        return ~_truth(expr), "yes/no"
    if isinstance(node, ast.Compare):
        return _comparison(node, text)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.FloorDiv):
        return _floor_division(node, text)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult):
        a, ka = _compile(node.left, text)
        b, kb = _compile(node.right, text)
        _need(ka, "number", node.left, text)
        _need(kb, "number", node.right, text)
        ops = {ast.Add: pc.add_checked, ast.Sub: pc.subtract_checked, ast.Mult: pc.multiply_checked}
        return ops[type(node.op)](a, b), "number"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _min_max(node, node.func.id, text)
    if isinstance(node, ast.IfExp):
        test, kind = _compile(node.test, text)
        _need(kind, "yes/no", node.test, text)
        yes, ky = _compile(node.body, text)
        no, kn = _compile(node.orelse, text)
        _need(kn, ky, node.orelse, text)
        return pc.if_else(_truth(test), yes, no), ky
    if isinstance(node, ast.Name):
        if node.id not in FACTS:
            close = difflib.get_close_matches(node.id, FACTS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConditionError(f"{text!r}: unknown fact {node.id!r}{hint}")
        return pc.field(node.id), _kind(FACTS[node.id])
    if isinstance(node, ast.Constant):
        value, kind = _literal(node, text)
        return pc.scalar(value), kind
    raise ConditionError(f"{text!r}: {ast.unparse(node)!r} is not allowed in a condition")


def _bool_op(node: ast.BoolOp, text: str) -> Compiled:
    """``and`` / ``or`` of yes/no terms (a missing term counts as false)."""
    parts = []
    for v in node.values:
        expr, kind = _compile(v, text)
        _need(kind, "yes/no", v, text)
        parts.append(_truth(expr))
    combined = parts[0]
    for p in parts[1:]:
        combined = (combined & p) if isinstance(node.op, ast.And) else (combined | p)
    return combined, "yes/no"


def _comparison(node: ast.Compare, text: str) -> Compiled:
    """A chain of comparisons (``a < b <= c``), or membership in a tuple of literals."""
    left, left_kind = _compile(node.left, text)
    out: pc.Expression | None = None
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        if isinstance(op, ast.In | ast.NotIn):
            if not isinstance(right_node, ast.Tuple | ast.List) or not right_node.elts:
                raise ConditionError(f"{text!r}: 'in' needs a tuple of literals")
            values = []
            for e in right_node.elts:
                value, kind = _literal(e, text)
                _need(kind, left_kind, e, text)
                values.append(value)
            term = pc.is_in(left, value_set=pa.array(values))
            term = ~term if isinstance(op, ast.NotIn) else term
        elif type(op) in _COMPARE:
            right, right_kind = _compile(right_node, text)
            _need(right_kind, left_kind, right_node, text)
            term = _COMPARE[type(op)](left, right)
            left = right
        else:
            raise ConditionError(f"{text!r}: operator {type(op).__name__} is not allowed")
        out = term if out is None else out & term
    assert out is not None
    return out, "yes/no"


def _floor_division(node: ast.BinOp, text: str) -> Compiled:
    """``amount // n``, by a positive whole number only."""
    a, ka = _compile(node.left, text)
    _need(ka, "number", node.left, text)
    divisor, kind = _literal(node.right, text)
    if kind != "number" or divisor <= 0:
        raise ConditionError(f"{text!r}: '//' divides by a positive whole number only")
    # Arrow's integer division truncates: the same as rounding down for the
    # amounts it meets (never negative: evaluate_rules refuses a negative amount).
    return pc.divide_checked(a, pc.scalar(pa.scalar(divisor, pa.int64()))), "number"


def _min_max(node: ast.Call, name: str, text: str) -> Compiled:
    """``min(a, b, …)`` or ``max(a, b, …)`` of numbers: the only calls allowed."""
    if name not in ("min", "max") or node.keywords or len(node.args) < 2:
        raise ConditionError(
            f"{text!r}: {ast.unparse(node)!r} is not allowed in a condition "
            "(only min(a, b, …) and max(a, b, …) may be called)"
        )
    args = []
    for arg in node.args:
        expr, kind = _compile(arg, text)
        _need(kind, "number", arg, text)
        args.append(expr)
    pick = pc.min_element_wise if name == "min" else pc.max_element_wise
    return pick(*args), "number"


def _truth(expr: pc.Expression) -> pc.Expression:
    """Missing means false: a null comparison never makes a rule fire."""
    return pc.coalesce(expr, pc.scalar(False))


def _compiled(text: str, kind: str, what: str) -> pc.Expression:
    """``text`` compiled, refused unless it is of ``kind`` (a condition, an amount)."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ConditionError(f"{text!r}: not a valid {what} ({exc.msg})") from None
    expr, got = _compile(tree.body, text)
    _need(got, kind, tree.body, text)
    return expr


def compile_amount(text: str) -> pc.Expression:
    """Compile a rule's amount (integer cents); raises ``ConditionError`` with a reason."""
    return _compiled(text, "number", "amount")


def with_derived_facts(facts: pa.Table) -> pa.Table:
    """``facts`` with the derived facts (``DERIVED``) added from ``couple`` and ``children``,
    and an unknown ``spouse_student_status`` read as ``'none'``."""
    adults = pc.if_else(pc.fill_null(facts.column("couple"), False), 2, 1).cast(pa.int64())
    persons = pc.add_checked(adults, pc.fill_null(facts.column("children"), 0))
    if "spouse_student_status" in facts.column_names:
        i = facts.column_names.index("spouse_student_status")
        known = pc.fill_null(facts.column(i), "none")
        facts = facts.set_column(i, "spouse_student_status", known)
    return facts.append_column("adults", adults).append_column("persons", persons)


def compile_condition(text: str) -> pc.Expression:
    """Compile a rule condition; raises ``ConditionError`` with a readable reason."""
    return _truth(_compiled(text, "yes/no", "condition"))
