"""Named crash points, for proving that a process killed at any step loses and repeats nothing.

``PAYMENTS_FAULT=<point>[@<n>]`` makes the process kill itself (SIGKILL: no
cleanup, no ``finally``, like a worker lost with its machine) the ``n``-th time
(default: first) it reaches ``checkpoint(<point>)``. Unset, a checkpoint is
one dictionary lookup. ``make faults`` runs every point of
:data:`SEND_POINTS` and counts what reached the bank.

``<point>[@<n>]:stall`` makes the process stop there instead, alive and
holding what it holds (its lease, its SFTP session), until something outside
kills it: the distributed test loses a whole Celery worker at that step.
With ``PAYMENTS_FAULT_ONCE=<file>`` the fault strikes only the first process,
among all that share the file's folder, to reach the point; it writes its host
name into the file, so the test knows which machine to take down.
"""

from __future__ import annotations

import os
import signal
import socket
import time

ENV = "PAYMENTS_FAULT"
ONCE_ENV = "PAYMENTS_FAULT_ONCE"

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
    if _reached[point] != int(nth or 1) or not _first_to_arrive():
        return
    if action == "stall":
        while True:
            time.sleep(3600)
    os.kill(os.getpid(), signal.SIGKILL)


def _first_to_arrive() -> bool:
    """Whether no other process took ``PAYMENTS_FAULT_ONCE``'s file before this one."""
    path = os.environ.get(ONCE_ENV)
    if not path:
        return True
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as out:
        out.write(socket.gethostname())
    return True
