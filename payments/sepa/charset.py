"""Transliteration to the SEPA character set (EPC: the Latin subset below).

Allowed: a-z A-Z 0-9 / - ? : ( ) . , ' + and space. Accents are dropped
(é→e, ç→c), ligatures spelled out (œ→oe, æ→ae, ß→ss), typographic apostrophes
and dashes become ' and -. Anything still outside the set after that (a
Cyrillic or Chinese name, an emoji) is *reported*, never dropped silently: the
payment cannot be written with a name the bank would mangle.

None of the allowed characters needs escaping in XML text, so a transliterated
value can go into the file as it is.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

SEPA_CHARS = r"[A-Za-z0-9/\-?:().,'+ ]"
NOT_SEPA = r"[^A-Za-z0-9/\-?:().,'+ ]"

_FROM = ["œ", "Œ", "æ", "Æ", "ß", "’", "‘", "ʼ", "`", "´", "–", "—", "‐", "\u00a0", "&", "_"]
_TO = ["oe", "OE", "ae", "AE", "ss", "'", "'", "'", "'", "'", "-", "-", "-", " ", "+", " "]


def transliterate_expr(expr: pl.Expr, max_length: int) -> pl.Expr:
    """SEPA-set text, cut to ``max_length``; characters that cannot be mapped stay
    (so ``untransliterable`` can report them)."""
    return (
        expr.str.replace_many(_FROM, _TO)
        .str.normalize("NFKD")
        .str.replace_all(r"\p{M}", "")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
        .str.slice(0, max_length)
    )


#: A value the transliteration leaves as it is: SEPA characters only, words
#: separated by single spaces, nothing to trim.
_CLEAN = r"^[A-Za-z0-9/\-?:().,'+]+( [A-Za-z0-9/\-?:().,'+]+)*$"
_NOT_ASCII = r"[^\x00-\x7F]"
#: Whitespace the spacing steps would change: at either end, two in a row, or
#: other than a plain space.
_UNEVEN_SPACE = r"^\s|\s$|\s\s|[^\S ]"


def _letter_table() -> tuple[list[str], list[str]]:
    """Each Latin letter with a diacritic → what the chain makes of it ('é' → 'e').

    Computed by the chain's own first three steps, one character at a time:
    decomposing and dropping the marks works character by character, so
    mapping a name's letters through this table gives what the chain gives.
    Only letters that come out as ASCII are kept.
    """
    chars = [chr(c) for c in range(0xC0, 0x250) if chr(c) not in _FROM]
    out = (
        pl.Series("v", chars)
        .str.replace_many(_FROM, _TO)
        .str.normalize("NFKD")
        .str.replace_all(r"\p{M}", "")
    )
    kept = [(c, o) for c, o in zip(chars, out.to_list(), strict=True) if o and o.isascii()]
    return [*_FROM, *(c for c, _ in kept)], [*_TO, *(o for _, o in kept)]


_LETTERS_FROM, _LETTERS_TO = _letter_table()


def transliterate_touched(values: pl.Series, max_length: int) -> tuple[pl.Series, pl.Series]:
    """``transliterate_expr`` over a series, its costly steps run only where needed.

    Most names are plain ASCII (left as they are: one regex tells) or Latin
    letters with accents (one table lookup per letter, then the spacing
    steps); only what is left after that (another script, combining marks)
    goes through Unicode normalisation. Same result, value for value (tested
    against the chain). Also returns the rows it did not leave as they were:
    the others hold SEPA characters only.
    """
    clean = (values.str.contains(_CLEAN) & (values.str.len_chars() <= max_length)).fill_null(
        True
    )  # a null stays null either way
    rows = (~clean).arg_true()
    if rows.len() == 0:
        return values, rows
    todo = values.gather(rows)
    mapped = todo.str.replace_many(_LETTERS_FROM, _LETTERS_TO)
    other = mapped.str.contains(_NOT_ASCII).fill_null(False)
    # The spacing steps only where they change something (they copied every name).
    spacing = (
        mapped.str.contains(_UNEVEN_SPACE) | (mapped.str.len_bytes() > max_length)
    ).fill_null(False) & ~other
    fixed = mapped
    if spacing.any():
        rows_spaced = spacing.arg_true()
        spaced = mapped.gather(rows_spaced).str.replace_all(r"\s+", " ").str.strip_chars()
        fixed = fixed.scatter(rows_spaced, spaced.str.slice(0, max_length))
    if other.any():
        rest = other.arg_true()
        chain = todo.gather(rest).to_frame("v").select(transliterate_expr(pl.col("v"), max_length))
        fixed = fixed.scatter(rest, chain.to_series())
    return values.clone().scatter(rows, fixed), rows  # clone: scatter is in place


def transliterate(values: pa.Array | pa.ChunkedArray, max_length: int) -> pa.Array:
    """Vectorised transliteration of an Arrow string array."""
    series = pl.Series(values)
    return (
        series.to_frame("v")
        .select(transliterate_expr(pl.col("v"), max_length))
        .to_series()
        .to_arrow()
    )


def untransliterable(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Boolean: the (already transliterated) value still holds a non-SEPA character."""
    return pl.Series(values).str.contains(NOT_SEPA).fill_null(False).to_arrow()


def transliterate_one(text: str, max_length: int = 70) -> str:
    """Scalar convenience (messages, tests): the same rules on one value."""
    out = transliterate(pa.array([text]), max_length)[0].as_py()
    return str(out)


#: SEPA limit for names (the XSD allows 140).
NAME_MAX = 70


def creditor_names(df: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
    """The name each payment goes to, as the payment file writes it, and where it cannot be.

    The account holder (as the bank knows the account); when that is empty after
    transliteration, the claimant's first and last names. A name is *unwritable*
    when a character outside the SEPA set is left (another script, ``<``, ``=``,
    a control character) or nothing is: the compute step holds such payments
    (``name_unwritable``) so that no payable household is ever left out of the
    files. Returns (names, unwritable row numbers).
    """
    creditor, touched = transliterate_touched(df.get_column("account_holder"), NAME_MAX)
    # The claimant's names only where the holder came out empty (rare): transliterating
    # them for every household doubled the cost of this step.
    empty = creditor.str.len_chars().fill_null(0) == 0
    if empty.any():
        claimant = df.filter(empty).select(
            transliterate_expr(
                pl.concat_str("claimant_first_name", "claimant_last_name", separator=" "),
                NAME_MAX,
            )
        )
        creditor = creditor.scatter(empty.arg_true(), claimant.to_series())
        touched = pl.concat([touched, empty.arg_true()]).unique()
    # Only names the transliteration changed can hold a character outside the SEPA
    # set (the others passed its check); a name still empty cannot be written
    # either (the schema wants at least one character).
    if not touched.len():
        return creditor, touched
    names = creditor.gather(touched)
    found = (names.str.contains(NOT_SEPA) | (names.str.len_chars() == 0)).fill_null(True)
    return creditor, touched.filter(found)
