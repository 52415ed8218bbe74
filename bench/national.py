"""``make bench``: the national batch, stage by stage, beside the baseline.

Runs the pipeline's own stage functions without Airflow on a national sample
(cached outside the repository, ``$PAYMENTS_BENCH_DIR``, default
``~/.cache/solidarity-payments/bench``): read, validate, compute + deduplicate,
write pain.001, sign + manifest, then the ledger load (PostgreSQL and
SQLite) as its own rows. Then the same pipeline and the default approach
(:mod:`bench.baseline`) on the same subset, with the ratio per
stage and the payable totals compared; then a scaling run. Prints tables and
writes everything as JSON. Figures only: nothing here asserts a time.

Peak RSS is sampled (every 20 ms) over this process and its worker processes
together, per stage. Read and validate run fused in the worker processes (one
pass over each fund); their wall time is split by each phase's share of the
workers' time, measured inside the workers.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psutil
import pyarrow.parquet as pq

from bench import machine, targets
from payments.contract import load_contract
from payments.entitlement.folder import FactsAhead, compute_folder
from payments.registry import load_registry
from payments.sample.households import Window as SampleWindow
from payments.sample.writer import SampleSpec, write_sample
from payments.schemes import Scheme, load_scheme
from payments.sepa.batch import BatchResult, FileLayout, write_batch
from payments.sepa.profiles import BankProfile, load_profile
from payments.sepa.signing import Signer, generate_demo_pair, load_signer
from payments.validation.folder import validate_folder
from payments.validation.outputs import FolderValidation
from payments.validation.schema import Window

SCHEME = "aes-2020-05"
#: The issue's sizes: the national batch, and the least the side-by-side runs on.
NATIONAL = targets.NATIONAL
BASELINE = targets.BASELINE_MIN
SCALING = (500_000, 1_000_000, 2_000_000)
#: A fixed secret: the bench's keys need not be secret, only stable.
BENCH_SECRET = b"bench-secret-not-for-production!"
SEED = 2020


def bench_dir() -> Path:
    return Path(
        os.environ.get(
            "PAYMENTS_BENCH_DIR", Path.home() / ".cache" / "solidarity-payments" / "bench"
        )
    )


# --- measuring ---------------------------------------------------------------
class _RssSampler:
    """Peak resident memory of this process and its children, sampled in a thread;
    also the children's CPU seconds (total, kernel), as last seen.

    The children are listed every ``refresh`` samples only: listing them scans
    every process of the machine, and doing that every 20 ms took a core's
    tenth from the stages being measured. Worker processes live for a whole
    stage, so none is missed; the CPU a worker spends after its last sample
    (at most ``every`` seconds of it) is not counted.
    """

    def __init__(self, every: float = 0.02, refresh: int = 25) -> None:
        self.every = every
        self.refresh = refresh
        self.peak = 0
        self._stop = threading.Event()
        self._me = psutil.Process()
        self._procs: list[psutil.Process] = [self._me]
        self._child_cpu: dict[int, tuple[float, float]] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _list(self) -> None:
        self._procs = [self._me, *self._me.children(recursive=True)]

    def _rss(self) -> int:
        total = 0
        for proc in self._procs:
            try:
                total += proc.memory_info().rss
                if proc is not self._me:
                    cpu = proc.cpu_times()
                    self._child_cpu[proc.pid] = (cpu.user + cpu.system, cpu.system)
            except psutil.Error:
                continue
        return total

    @property
    def children_cpu(self) -> tuple[float, float]:
        """CPU seconds of the children seen while sampling: (total, in the kernel)."""
        seen = self._child_cpu.values()
        return sum(t for t, _ in seen), sum(k for _, k in seen)

    def _run(self) -> None:
        samples = 0
        while not self._stop.is_set():
            if samples % self.refresh == 0:
                self._list()
            samples += 1
            self.peak = max(self.peak, self._rss())
            self._stop.wait(self.every)

    def __enter__(self) -> _RssSampler:
        self._list()
        self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._list()
        self.peak = max(self.peak, self._rss())


def _cpu() -> tuple[float, float]:
    """CPU seconds of this process, and those in the kernel (the workers' are sampled:
    :attr:`Measured.children`).

    The kernel's share is mostly memory handed to the process for the first
    time: on a virtual machine whose host takes back the memory the guest
    frees, it varies from run to run (docs/benchmarks.md), so it is shown apart.
    """
    me = os.times()
    return me.user + me.system, me.system


@dataclass
class Stage:
    name: str
    rows: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: int
    in_mb: float = 0.0
    out_mb: float = 0.0
    note: str = ""
    #: Of ``cpu_s``, the seconds spent in the kernel (mostly first touches of memory).
    sys_s: float = 0.0

    @property
    def rows_per_s(self) -> int:
        return int(self.rows / self.wall_s) if self.wall_s else 0

    @property
    def mb_per_s(self) -> float:
        return round(self.in_mb / self.wall_s, 1) if self.wall_s else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_s": self.rows_per_s, "mb_per_s": self.mb_per_s}


@dataclass
class Measured:
    wall: float = 0.0
    cpu: float = 0.0
    sys: float = 0.0
    peak: int = 0
    #: CPU seconds of the worker processes seen during the stage: (total, kernel).
    children: tuple[float, float] = (0.0, 0.0)


@contextmanager
def measure() -> Iterator[Measured]:
    out = Measured()
    (cpu0, sys0), wall0 = _cpu(), time.perf_counter()
    with _RssSampler() as rss:
        yield out
    cpu1, sys1 = _cpu()
    out.wall, out.cpu, out.sys, out.peak = (
        time.perf_counter() - wall0,
        cpu1 - cpu0,
        sys1 - sys0,
        rss.peak,
    )
    out.children = rss.children_cpu


def _mb(paths: list[Path]) -> float:
    return round(sum(p.stat().st_size for p in paths if p.is_file()) / 1e6, 1)


def _files(root: Path, pattern: str) -> list[Path]:
    return sorted(root.rglob(pattern))


# --- the sample ----------------------------------------------------------------
def sample(
    households: int, *, funds: tuple[str, ...] = (), log: Callable[[str], None] = print
) -> Path:
    """The sample of ``households`` under the bench folder, generated once and reused
    (again when the input contract changed: the bench measures what funds send today)."""
    root = bench_dir() / f"sample-{households}{'-' + '-'.join(funds) if funds else ''}"
    spec = SampleSpec(
        households,
        SEED,
        SampleWindow(SCHEME, ("2020-04", "2020-05"), date(2020, 5, 10)),
        funds=funds,
    )
    marker = root / "bench-sample.json"
    wanted = json.dumps(
        {
            "households": households,
            "seed": SEED,
            "scheme": SCHEME,
            "funds": funds,
            "contract": load_contract().version,
        }
    )
    if marker.exists() and marker.read_text() == wanted:
        return root
    log(f"generating the sample: {households:,} households under {root}")
    shutil.rmtree(root, ignore_errors=True)
    write_sample(spec, root)
    marker.write_text(wanted)
    return root


# --- our pipeline, stage by stage ------------------------------------------------
_CLOCK_LOCK = threading.Lock()
#: Payment files are written by two threads; the signing time they add up is
#: reported over the threads (its share of the wall time).
WRITER_THREADS = 2


@dataclass(frozen=True)
class _TimedSigner(Signer):
    """The signer, with the time spent signing counted (write and sign are one pass)."""

    clock: list[float] = field(default_factory=lambda: [0.0])

    @property
    def spent(self) -> float:
        return self.clock[0]

    def sign_digest(self, digest: bytes) -> bytes:
        t = time.perf_counter()
        try:
            return super().sign_digest(digest)
        finally:
            with _CLOCK_LOCK:  # the writer threads sign concurrently
                self.clock[0] += time.perf_counter() - t


@dataclass
class PipelineRun:
    households: int
    stages: list[Stage] = field(default_factory=list)
    payable: int = 0
    payable_cents: int = 0
    decisions: Path | None = None
    #: Measured beside the run, outside read → sign (the other pain.001 version's write).
    beside: list[Stage] = field(default_factory=list)

    @property
    def total_wall(self) -> float:
        return round(sum(s.wall_s for s in self.stages), 3)

    @property
    def peak_rss_mb(self) -> int:
        return max((s.peak_rss_mb for s in self.stages), default=0)


def run_pipeline(
    root: Path, households: int, signer: Signer, *, workers: int, scheme: Scheme
) -> PipelineRun:
    """read → validate → compute → write → sign, with the pipeline's own functions."""
    out = root / "bench-run"
    shutil.rmtree(out, ignore_errors=True)
    run = PipelineRun(households)
    # As run_batch does: each fund's facts are built here as soon as the fund is
    # validated, while the workers validate the others.
    ahead = FactsAhead(out / "validation", scheme, BENCH_SECRET, threads=workers)
    validation, facts_cpu = _validate_stage(run, root, out, ahead, workers=workers, scheme=scheme)
    decisions = _compute_stage(run, out, ahead, facts_cpu, validation, workers, scheme)
    batch, m, timed = _timed_write(decisions, scheme, signer, out / "payments")
    _write_stages(run, batch, m, timed, out)
    run.beside.append(_write_other_version(decisions, scheme, signer, out, run.decisions))
    return run


def _validate_stage(
    run: PipelineRun, root: Path, out: Path, ahead: FactsAhead, *, workers: int, scheme: Scheme
) -> tuple[FolderValidation, tuple[float, float]]:
    """Read and validate, fused in the worker processes; the wall time split between the
    two by their share of the workers' CPU. Returns the validation and this process's
    CPU meanwhile (the facts being built, counted with compute)."""
    try:
        with measure() as m:
            validation = validate_folder(
                root,
                out / "validation",
                SCHEME,
                Window.of(scheme),
                workers=workers,
                on_done=ahead.validated,
            )
    except BaseException:
        ahead.close()  # on success, ``take`` waits for the facts, then stops
        raise
    spent = validation.cpu_seconds
    share = spent.get("read", 0.0) / max(sum(spent.values()), 1e-9)
    rows = int(validation.totals()["rows_read"])
    in_mb = _mb(_files(root / "funds", "*.csv"))
    # One worker validates in this process: its CPU then includes the facts built
    # meanwhile, which go to compute when the workers are other processes.
    in_process = not m.children[0]
    cpu, kernel = (m.cpu, m.sys) if in_process else m.children
    for name, part, out_mb, note in (
        ("read (SHA-256, file checks, CSV parse)", share, 0.0, "wall split by worker CPU"),
        (
            "validate (Pandera rules, quarantine, Parquet)",
            1 - share,
            _mb(_files(out / "validation", "*.parquet")),
            "",
        ),
    ):
        run.stages.append(
            Stage(
                name,
                rows,
                round(m.wall * part, 3),
                round(cpu * part, 3),
                m.peak // 2**20,
                in_mb=in_mb,
                out_mb=out_mb,
                note=note,
                sys_s=round(kernel * part, 3),
            )
        )
    return validation, (0.0, 0.0) if in_process else (m.cpu, m.sys)


def _compute_stage(
    run: PipelineRun,
    out: Path,
    ahead: FactsAhead,
    facts_cpu: tuple[float, float],
    validation: FolderValidation,
    workers: int,
    scheme: Scheme,
) -> Any:
    """Compute and deduplicate nationally (most facts were built during validation)."""
    with measure() as m:
        computed = compute_folder(
            out / "validation",
            out / "compute",
            scheme,
            secret=BENCH_SECRET,
            run_date=scheme.spec.payment_date,
            workers=workers,
            facts=ahead.take(),
        )
    decisions_path = out / "compute" / "decisions.parquet"
    run.decisions = decisions_path
    run.stages.append(
        Stage(
            "compute + deduplicate (keys, facts, rules, holds)",
            int(validation.totals()["accepted"]),
            round(m.wall, 3),
            round(m.cpu + facts_cpu[0], 3),
            m.peak // 2**20,
            in_mb=_mb(_files(out / "validation", "accepted.parquet")),
            out_mb=_mb([decisions_path]),
            note="most funds' facts are built during validation (their CPU is counted here)",
            sys_s=round(m.sys + facts_cpu[1], 3),
        )
    )
    return computed.frame if computed.frame is not None else pq.read_table(decisions_path)


def _write_stages(
    run: PipelineRun, batch: BatchResult, m: Measured, timed: _TimedSigner, out: Path
) -> None:
    """The write and the signing, apart: the signer's clock says how long RSA took."""
    totals = batch.manifest["totals"]
    run.payable, run.payable_cents = int(totals["nb_of_txs"]), int(totals["ctrl_sum_cents"])
    xml = _files(out / "payments", "*.xml")
    decisions_mb = _mb([run.decisions]) if run.decisions else 0.0
    run.stages.append(
        Stage(
            "write pain.001.001.09 (epc-2019; per fund, split)",
            run.payable,
            round(m.wall - timed.spent / WRITER_THREADS, 3),
            round(m.cpu - timed.spent, 3),
            m.peak // 2**20,
            in_mb=decisions_mb,
            out_mb=_mb(xml),
            sys_s=round(m.sys, 3),
        )
    )
    run.stages.append(
        Stage(
            f"sign + manifest (CMS, RSA-3072, {len(xml)} files)",
            run.payable,
            round(timed.spent / WRITER_THREADS, 3),
            round(timed.spent, 3),
            m.peak // 2**20,
            in_mb=_mb(xml),
            out_mb=_mb(_files(out / "payments", "*.p7s")),
        )
    )


def _timed_write(
    decisions: Any,
    scheme: Scheme,
    signer: Signer,
    folder: Path,
    profile: BankProfile | None = None,
) -> tuple[BatchResult, Measured, _TimedSigner]:
    """The run's payment files written under ``folder``, measured, RSA time apart."""
    timed = _TimedSigner(signer.key, signer.certificate)
    with measure() as m:
        batch = write_batch(
            decisions,
            scheme,
            run_id=f"{SCHEME}-bench",
            created_at=datetime(2020, 5, 14, 8, 0),
            signer=timed,
            out_dir=folder,
            layout=FileLayout(profile=profile, threads=WRITER_THREADS),
        )
    return batch, m, timed


def _write_other_version(
    decisions: Any, scheme: Scheme, signer: Signer, out: Path, decisions_path: Path | None
) -> Stage:
    """The same write in pain.001.001.03 (sepa-2009), signing included, then deleted."""
    folder = out / "payments-sepa-2009"
    batch, m, timed = _timed_write(decisions, scheme, signer, folder, load_profile("sepa-2009"))
    stage = Stage(
        "write pain.001.001.03 (sepa-2009, beside the run)",
        int(batch.manifest["totals"]["nb_of_txs"]),
        round(m.wall - timed.spent / WRITER_THREADS, 3),
        round(m.cpu - timed.spent, 3),
        m.peak // 2**20,
        in_mb=_mb([decisions_path]) if decisions_path else 0.0,
        out_mb=_mb(_files(folder, "*.xml")),
        sys_s=round(m.sys, 3),
    )
    shutil.rmtree(folder)
    return stage


# --- the ledger load -------------------------------------------------------------
def ledger_load(decisions: Path, url: str, label: str, scheme: Scheme) -> Stage:
    """Record every decision of the run in a fresh ledger, as ``payments run`` does."""
    from sqlalchemy.orm import Session

    from payments.ledger.decisions import record_decisions
    from payments.ledger.migrate import engine_for, upgrade
    from payments.ledger.runs import record_run

    upgrade(url)
    engine = engine_for(url)
    table = pq.read_table(decisions)
    at = datetime(2020, 5, 14, 8, 0)
    with measure() as m, Session(engine) as session, session.begin():
        record_run(
            session,
            run_id=f"{SCHEME}-bench",
            scheme=scheme,
            parameters={},
            code_version="bench",
            at=at,
            triggered_by="bench",
        )
        recorded = record_decisions(
            session, run_id=f"{SCHEME}-bench", scheme=scheme, decisions=table, at=at
        )
    engine.dispose()
    return Stage(
        f"ledger load: {recorded.inserted:,} decisions into {label}",
        table.num_rows,
        round(m.wall, 3),
        round(m.cpu, 3),
        m.peak // 2**20,
        in_mb=_mb([decisions]),
        note="CPU of this process (the client); the server's is not counted",
        sys_s=round(m.sys, 3),
    )


def _fresh_postgres(base_url: str) -> str | None:
    """A new, empty database on the server of ``base_url``; None when unreachable."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from payments.ledger.migrate import create_database_sql

    target = make_url(base_url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            # Created as deploy/init-databases.sh creates the ledger's database.
            conn.execute(text(create_database_sql(str(target.database))))
    except Exception as exc:  # an absent server only skips its row
        print(f"PostgreSQL row skipped: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        return None
    finally:
        admin.dispose()
    return target.render_as_string(hide_password=False)


# --- the report ------------------------------------------------------------------
COLUMNS = ("wall_s", "cpu_s", "sys_s", "rows_per_s", "mb_per_s", "peak_rss_mb", "out_mb")


def print_stages(title: str, stages: list[Stage]) -> None:
    width = max(len(s.name) for s in stages)
    print(f"\n{title}")
    print(f"{'stage':<{width}}  {'rows':>10}  " + "  ".join(f"{c:>11}" for c in COLUMNS))
    for s in stages:
        d = s.to_dict()
        print(f"{s.name:<{width}}  {s.rows:>10,}  " + "  ".join(f"{d[c]:>11}" for c in COLUMNS))


def _signer(folder: Path) -> Signer:
    key, cert = folder / "bench-key.pem", folder / "bench-cert.pem"
    if not key.exists():
        generate_demo_pair(key, cert, common_name="solidarity-payments bench")
    return load_signer(key, cert)


def main(
    households: int = NATIONAL,
    *,
    baseline_households: int = BASELINE,
    scaling: tuple[int, ...] = SCALING,
    ledger: bool = True,
    postgres_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/payments_bench",
    workers: int | None = None,
    json_path: Path | None = None,
) -> dict[str, Any]:
    workers = workers or os.cpu_count() or 1
    scheme = load_scheme(SCHEME)
    bench_dir().mkdir(parents=True, exist_ok=True)
    signer = _signer(bench_dir())
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "workers": workers,
        "date": date.today().isoformat(),
    }

    # 1. The national run, between two measures of the machine itself.
    root = sample(households)
    speed_before = machine.reference_ms()
    national = run_pipeline(root, households, signer, workers=workers, scheme=scheme)
    speed_after = machine.reference_ms()
    report["machine"]["reference_ms"] = {"before": speed_before, "after": speed_after}
    print(
        "Machine reference, single core, best of five (lower is faster; see "
        "docs/benchmarks.md):\n"
        f"  before the national run: {machine.describe(speed_before)}\n"
        f"  after it:                {machine.describe(speed_after)}\n"
    )
    stages = list(national.stages) + national.beside
    if ledger and national.decisions is not None:
        pg = _fresh_postgres(postgres_url)
        if pg:
            stages.append(ledger_load(national.decisions, pg, "PostgreSQL (COPY)", scheme))
        lite = bench_dir() / "bench-ledger.sqlite"
        lite.unlink(missing_ok=True)
        stages.append(ledger_load(national.decisions, f"sqlite:///{lite}", "SQLite", scheme))
    print_stages(
        f"National run: {households:,} households, {workers} worker processes "
        f"(read → sign {national.total_wall} s, peak RSS {national.peak_rss_mb:,} MB)",
        stages,
    )
    report["national"] = {
        "households": households,
        "read_to_sign_wall_s": national.total_wall,
        "peak_rss_mb": national.peak_rss_mb,
        "payable": national.payable,
        "payable_cents": national.payable_cents,
        "stages": [s.to_dict() for s in stages],
    }

    # 2. Side by side with the default approach, on the same subset.
    if baseline_households:
        report["baseline"] = side_by_side(baseline_households, signer, workers, scheme)

    # 3. Scaling.
    if scaling:
        points = []
        for n in sorted({*scaling}):
            run = (
                national
                if n == households
                else run_pipeline(sample(n), n, signer, workers=workers, scheme=scheme)
            )
            points.append(
                {"households": n, "wall_s": run.total_wall, "peak_rss_mb": run.peak_rss_mb}
            )
        if households not in scaling:
            points.append(
                {
                    "households": households,
                    "wall_s": national.total_wall,
                    "peak_rss_mb": national.peak_rss_mb,
                }
            )
        print("\nScaling (read → sign)")
        print(f"{'households':>12}  {'wall_s':>8}  {'µs/household':>12}  {'peak_rss_mb':>11}")
        for p in points:
            per = p["wall_s"] / p["households"] * 1e6
            print(
                f"{p['households']:>12,}  {p['wall_s']:>8}  {per:>12.2f}  {p['peak_rss_mb']:>11,}"
            )
        report["scaling"] = points

    # 4. The figures against the targets (read, never asserted).
    verdicts = targets.against_targets(report)
    report["targets"] = [asdict(v) for v in verdicts]
    print(
        "\nAgainst the targets (figures on this machine, never asserted; compare "
        "hosts by the machine reference above):\n" + targets.describe(verdicts)
    )

    out = json_path or bench_dir() / "bench.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nJSON: {out}")
    return report


def side_by_side(
    households: int, signer: Signer, workers: int, scheme: Scheme, funds: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Ours and the baseline on the same sample; ratios per stage; totals compared."""
    from bench import baseline
    from payments.entitlement.holds import load_hold_policy

    root = sample(households, funds=funds)
    ours = run_pipeline(root, households, signer, workers=workers, scheme=scheme)
    with measure() as m:
        theirs = baseline.run(
            root,
            scheme,
            contract=load_contract(),
            registry=load_registry(),
            policy=load_hold_policy(),
            sign=signer.sign,
            created_at=datetime(2020, 5, 14, 8, 0),
            clock=time.perf_counter,
        )
    pairs = [
        ("read", ours.stages[0].wall_s, theirs.timings["read"]),
        ("validate", ours.stages[1].wall_s, theirs.timings["validate"]),
        ("compute + deduplicate", ours.stages[2].wall_s, theirs.timings["compute"]),
        ("write pain.001", ours.stages[3].wall_s, theirs.timings["write"]),
        ("sign", ours.stages[4].wall_s, theirs.timings["sign"]),
    ]
    pairs.append(("total", sum(p[1] for p in pairs), sum(p[2] for p in pairs)))
    same = (ours.payable, ours.payable_cents) == (theirs.payable, theirs.payable_cents)
    print(
        f"\nSide by side on {households:,} households "
        f"(baseline: pandas row-wise apply, schwifty, sepaxml; peak RSS {m.peak // 2**20:,} MB)"
    )
    print(f"{'stage':<22}  {'ours_s':>8}  {'baseline_s':>10}  {'baseline/ours':>13}")
    rows = []
    for name, a, b in pairs:
        ratio = round(b / a, 1) if a else float("inf")
        rows.append({"stage": name, "ours_s": round(a, 3), "baseline_s": round(b, 3), "x": ratio})
        print(f"{name:<22}  {a:>8.2f}  {b:>10.2f}  {ratio:>12}x")
    print(
        f"payable: ours {ours.payable:,} / {ours.payable_cents:,} cents, "
        f"baseline {theirs.payable:,} / {theirs.payable_cents:,} cents: "
        + ("equal" if same else "DIFFERENT")
    )
    return {
        "households": households,
        "stages": rows,
        "ours": {"payable": ours.payable, "payable_cents": ours.payable_cents},
        "baseline": {
            "payable": theirs.payable,
            "payable_cents": theirs.payable_cents,
            "peak_rss_mb": m.peak // 2**20,
        },
        "totals_equal": same,
    }


if __name__ == "__main__":
    main()
