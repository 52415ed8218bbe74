"""No NIR or IBAN reaches a log line in clear."""

from __future__ import annotations

import io
import logging

import pytest

from payments.logs import mask, setup_logging

NIR = "285072A00401252"
IBAN = "FR7630004000031234567890143"


@pytest.fixture
def stream() -> io.StringIO:
    handler = setup_logging("DEBUG")
    out = io.StringIO()
    handler.setStream(out)  # type: ignore[attr-defined]
    return out


def test_masks_args_messages_and_exceptions(stream: io.StringIO) -> None:
    log = logging.getLogger("payments.test")
    log.info("household %s pays into %s", NIR, IBAN)
    log.warning(
        "row: %r", {"nir": "1 85 07 2A 004 012 52", "iban": "FR76 3000 4000 0312 3456 7890 143"}
    )
    try:
        raise ValueError(f"bad row {NIR} {IBAN}")
    except ValueError:
        log.exception("failed")
    text = stream.getvalue()
    assert NIR not in text and "004 012 52" not in text
    assert IBAN not in text and "3456 7890" not in text
    assert "[NIR]" in text and "FR**…0143" in text
    assert "ValueError" in text  # the exception is still there, masked


def test_masks_in_child_loggers_and_leaves_hashes(stream: io.StringIO) -> None:
    sha = "482ee0a4964f1c222745c51976bb4240e6720917b14c283711fd32f4532b1356"
    logging.getLogger("payments.deep.child").error("file %s for %s", sha, NIR)
    text = stream.getvalue()
    assert sha in text and NIR not in text


def test_mask_function() -> None:
    assert mask(f"a {NIR} b") == "a [NIR] b"
    assert mask("count 1234") == "count 1234"
    assert mask(f"x{IBAN}") == f"x{IBAN}"  # glued to a word: not an IBAN boundary
