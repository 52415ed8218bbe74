"""``payments bench``: national-scale figures (``make bench``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from payments.benchmarks import targets as bench_targets


def bench(
    households: Annotated[
        int, typer.Option(help="Households in the national run (101 fund files).")
    ] = bench_targets.NATIONAL,
    baseline: Annotated[
        int,
        typer.Option(help="Households of the side-by-side with the default approach (0: skip)."),
    ] = bench_targets.BASELINE_MIN,
    scaling: Annotated[
        bool, typer.Option(help="Also run 0.5 M, 1 M and 2 M households (time and memory growth).")
    ] = True,
    ledger: Annotated[bool, typer.Option(help="Time the ledger load (PostgreSQL, SQLite).")] = True,
    postgres: Annotated[
        str, typer.Option(help="Server for the ledger-load row; its database is recreated.")
    ] = "postgresql+psycopg://postgres@127.0.0.1:5432/payments_bench",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Where to write the figures (default: bench dir).")
    ] = None,
    dag: Annotated[
        bool,
        typer.Option(
            "--dag",
            help="Instead: the national run through the DAG under the real scheduler "
            "(LocalExecutor, parallelism 2), PostgreSQL ledger, approval through the API.",
        ),
    ] = False,
) -> None:
    """National-scale figures, stage by stage, beside the default approach (never asserted).

    Samples are generated once and cached outside the repository
    ($PAYMENTS_BENCH_DIR, default ~/.cache/solidarity-payments/bench).
    """
    if dag:
        from payments.benchmarks import dag_runtime

        dag_runtime.main(households, postgres.rsplit("/", 1)[0] + "/payments_bench_dag", json_out)
        return
    from payments.benchmarks.national import SCALING, main

    main(
        households,
        baseline_households=baseline,
        scaling=SCALING if scaling else (),
        ledger=ledger,
        postgres_url=postgres,
        json_path=json_out,
    )
