"""Terminal output for long commands: progress bars and summary tables.

Progress goes to stderr and only when stderr is a terminal and CI is not set,
so logs of CI runs and Airflow tasks stay clean; tables go to stdout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True)


def interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


@contextmanager
def progress(description: str, total: int, *, enabled: bool = True) -> Iterator[Progress]:
    """A progress bar that is silently disabled when nobody watches."""
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        disable=not (enabled and interactive()),
        transient=True,
    )
    with bar:
        bar.add_task(description, total=total)
        yield bar
