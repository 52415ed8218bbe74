"""``python -m bench`` (``make bench``, ``make bench-dag``): national-scale figures.

Outside the product package, as the benchmarks of pandera (``asv_bench/``):
it calls the pipeline's own functions and is never installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bench import targets as bench_targets

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
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
    distributed: Annotated[
        bool,
        typer.Option(
            "--distributed",
            help="Instead: the batch on 1 then 2 Celery workers as docker-compose.yml deploys "
            "it (Redis, PostgreSQL, S3 storage root, sshd), on a small sample (--households, "
            "default 12,000).",
        ),
    ] = False,
) -> None:
    """National-scale figures, stage by stage, beside the default approach (never asserted).

    Samples are generated once and cached outside the repository
    ($PAYMENTS_BENCH_DIR, default ~/.cache/solidarity-payments/bench).
    """
    if distributed:
        from bench import celery_scaling

        small = households if households != bench_targets.NATIONAL else celery_scaling.HOUSEHOLDS
        celery_scaling.main(small, json_out)
        return
    if dag:
        from bench import dag_runtime

        dag_runtime.main(households, postgres.rsplit("/", 1)[0] + "/payments_bench_dag", json_out)
        return
    from bench.national import SCALING, main

    main(
        households,
        baseline_households=baseline,
        scaling=SCALING if scaling else (),
        ledger=ledger,
        postgres_url=postgres,
        json_path=json_out,
    )


if __name__ == "__main__":
    app()
