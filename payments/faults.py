"""Named crash points, for proving that a process killed at any step loses and repeats nothing.

``PAYMENTS_FAULT=<point>[@<n>]`` makes the process kill itself (SIGKILL: no
cleanup, no ``finally``, like a worker lost with its machine) the ``n``-th time
(default: first) it reaches ``checkpoint(<point>)``. ``<point>[@<n>]:stall``
makes it stop there instead, alive and holding what it holds (its ledger
claim, its SFTP session), until something outside kills it: a test that
must lose a whole machine at that step (the distributed test kills the Celery
worker around it). Unset, a checkpoint is one dictionary lookup. ``make faults`` runs every point of
:data:`SEND_POINTS` and counts what reached the bank.
"""

from __future__ import annotations

import os
import signal
import time

ENV = "PAYMENTS_FAULT"

#: The steps of sending one payment file, in order (payments.transport.deliver).
SEND_POINTS = (
    "send.claimed",  # the ledger row is ours; nothing at the bank yet
    "send.signature_up",  # the .p7s is at the bank
    "send.part_written",  # the complete .part is at the bank, checked
    "send.committing",  # the ledger says the rename is next
    "send.renamed",  # the file is at the bank under its name; the ledger does not know
    "send.recorded",  # the ledger says uploaded and its payments sent
)

_reached: dict[str, int] = {}


def checkpoint(point: str) -> None:
    """Die here if ``PAYMENTS_FAULT`` names this point (and this is its n-th visit)."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    spec, _, action = spec.partition(":")
    name, _, nth = spec.partition("@")
    if name != point:
        return
    _reached[point] = _reached.get(point, 0) + 1
    if _reached[point] != int(nth or 1):
        return
    if action == "stall":
        while True:
            time.sleep(3600)
    os.kill(os.getpid(), signal.SIGKILL)
