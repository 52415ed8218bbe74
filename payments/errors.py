"""The project's exceptions: one base, so a caller can tell ours from a library's.

A *refusal* is the ledger or a check saying no to something a person asked
(approve a rejected run, decide on one's own run): it subclasses
``PermissionError`` so that shells which already report permission errors
report it the same way.
"""

from __future__ import annotations


class PaymentsError(Exception):
    """Raised by this project, with a sentence that says what and where."""


class Refused(PaymentsError, PermissionError):
    """A request the rules forbid: nothing was changed."""


class FourEyesError(Refused):
    """A decision refused because of who asks: no user, not an approver, or the run's triggerer."""


class UnknownRun(PaymentsError, KeyError):
    """A run id the ledger does not hold."""

    def __str__(self) -> str:  # KeyError would quote the sentence
        return str(self.args[0]) if self.args else ""


class TieOutError(PaymentsError, RuntimeError):
    """Rows, households or cents were lost or counted twice: a bug, never a data problem.

    Raised where a stage checks that what came in equals what went out (rows read =
    accepted + quarantined; households = the sum of the decisions' statuses).
    """
