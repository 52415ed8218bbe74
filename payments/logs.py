"""One logging setup for the project, with personal data masked in every line.

Social security numbers (NIR) and IBANs must never reach a log file, a console
or an Airflow task log in clear. ``MaskingFilter`` rewrites each record's final
text (message *after* %-formatting, exception and stack text included), so a
careless ``log.info("paid %s", row)`` is still safe. It is attached to handlers,
not loggers, because handler filters also see records propagated from child
loggers.
"""

from __future__ import annotations

import logging
import re
import sys

#: A NIR: sex, year, month, département (digits or 2A/2B), commune, order and
#: an optional key, with or without the spaces people type between groups.
NIR_PATTERN = re.compile(
    r"(?<![0-9A-Za-z])"
    r"[1-478] ?\d{2} ?\d{2} ?(?:\d{2}|2[AaBb]) ?\d{3} ?\d{3}(?: ?\d{2})?"
    r"(?![0-9A-Za-z])"
)
#: An IBAN, compact or printed in groups of four. Upper case only, so that
#: lower-case hexadecimal hashes are left alone.
IBAN_PATTERN = re.compile(r"(?<![0-9A-Za-z])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![0-9A-Za-z])")

NIR_MASK = "[NIR]"


def _mask_iban(match: re.Match[str]) -> str:
    compact = match.group(0).replace(" ", "")
    return f"{compact[:2]}**…{compact[-4:]}"


def mask(text: str) -> str:
    """``text`` with every IBAN and NIR masked (IBAN keeps country and last 4)."""
    text = IBAN_PATTERN.sub(_mask_iban, text)
    return NIR_PATTERN.sub(NIR_MASK, text)


class MaskingFilter(logging.Filter):
    """Mask NIRs and IBANs in the fully rendered text of each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask(record.getMessage())
        record.args = None
        if record.exc_info:
            formatter = logging.Formatter()
            record.exc_text = mask(formatter.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: int | str = logging.INFO) -> logging.Handler:
    """Send the ``payments`` logs to stderr through the masking filter.

    Idempotent: calling it again replaces the handler it installed before.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_payments_handler", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(MaskingFilter())
    handler._payments_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    install_masking(root)
    return handler


def install_masking(logger: logging.Logger | None = None) -> None:
    """Attach the masking filter to every handler of ``logger`` (root by default).

    For hosts that configure their own handlers (Airflow task logs): call it
    after their setup so their handlers mask too.
    """
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
