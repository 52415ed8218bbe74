"""Small vectorised text helpers over Arrow: build strings without a Python loop per row."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc


def zpad(values: npt.NDArray[np.int64], width: int) -> pa.Array:
    """Integers as zero-padded decimal strings (``7, 3`` -> ``"007"``)."""
    return pc.utf8_lpad(pc.cast(pa.array(values, pa.int64()), pa.string()), width, padding="0")


def concat(*parts: Any) -> pa.Array:
    """Element-wise concatenation of string arrays and/or scalars."""
    return pc.binary_join_element_wise(*parts, "")


def pick(choices: tuple[str, ...] | list[str], index: npt.NDArray[np.int64]) -> pa.Array:
    """``choices[index[i]]`` for every i, as an Arrow string array."""
    return pa.array(choices, pa.string()).take(pa.array(index, pa.int64()))


def dates(days_since_epoch: npt.NDArray[np.int64]) -> pa.Array:
    """Days since 1970-01-01 as an Arrow date32 array."""
    return pa.array(days_since_epoch.astype(np.int32), pa.int32()).cast(pa.date32())


def date_text(days_since_epoch: npt.NDArray[np.int64]) -> pa.Array:
    """Days since 1970-01-01 as ISO ``YYYY-MM-DD`` strings."""
    return pc.cast(dates(days_since_epoch), pa.string())
