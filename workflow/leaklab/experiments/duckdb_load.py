"""``duckdb_load``: create, load and drop tables at a fixed rate in an in-memory DuckDB.

After rkennedy-mode/duckdb-leak-reproduction (DuckDB 0.3.2 JDBC, duckdb#3291: old
catalog entries were never freed; fixed in 0.3.3 by PR #3323).  A pool of worker
threads takes table tasks submitted at a fixed rate; each task, on its thread's cursor,
creates ``T%09d (id BIGINT, message VARCHAR)``, loads ``rows`` rows (``load_on``) or
none (``load_off``), checks the count and drops the oldest tables beyond
``resident_tables``.  The original used a JDBC appender; here the rows are generated
inside DuckDB (``INSERT ... SELECT ... FROM range(n)``), which writes the same data
through the same storage path without a Python loop per row.

One unit = one dropped table: the leak of duckdb#3291 is per dropped catalog entry,
so growth reads as bytes per dropped table whatever the rate.  A mark each second
records the tables created and dropped so far (its unit is the drop count), the task
rate achieved, glibc's heap in use (which sees DuckDB's own allocations in 0.3.x; later
wheels bring their own jemalloc) and DuckDB's own accounting (``duckdb_memory()``,
DuckDB >= 0.10) where the version has it.  The mark waits (up to
``QUIESCENT_WAIT_S``) until no task is queued or in progress, so that the heap it reads
holds what the dropped tables left, not a table half loaded (``quiescent`` says whether
it got there).

Each worker thread opens one cursor the first time it runs a task and keeps it for the
run (closed before the connection).  A cursor per task would measure the binding's
cursors, not the dropped tables: up to DuckDB 1.0 (0.6.1-1.0.0 measured; 1.2.2 no
longer) the Python binding keeps every cursor ``con.cursor()`` made
(``DuckDBPyConnection::Cursor`` appends it to the parent's list, and closing the cursor
does not take it out) until the parent connection closes, about 280 B each, which read
as a ~300 B/dropped table "leak" in both variants.  The mark records ``cursors_opened``.

DuckDB 0.3.x cannot use a cursor from another thread, and its cursors live until the
connection closes, so there the tasks run one at a time on the connection itself, as
one thread (DuckDB still runs its own workers).

What DuckDB 1.2.2 and 2.0.0 keep per table is bounded, not a leak of dropped tables:
every buffer DuckDB unpins puts a node in its buffer pool's eviction queue, a node whose
buffer is gone still holds (weakly) the buffer's ``BlockHandle``, whose memory (~190 B)
stays allocated while the node is queued, and the queue is purged only once it holds
32,768 nodes (``INSERT_INTERVAL * PURGE_SIZE_MULTIPLIER * EARLY_OUT_MULTIPLIER``).  The
count check (``SELECT count(*)``, planned as a constant in a ColumnDataCollection: for
empty tables in 1.2.2, for every table in 2.0.0) and, in 2.0.0, the load's transient
segments leave such nodes, so the heap in use climbs ~280 B (1.2.2 ``load_off``) or
~560 B (2.0.0 ``load_on``) per table until the queue is full, then stays level (from
~14,000 and ~7,500 drops); closing the connection frees it all.
"""

from __future__ import annotations

import collections
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from leaklab.experiments import cli
from leaklab.experiments.marks import mark

VARIANTS = ("load_on", "load_off")
BASELINE = "load_off"
UNIT = "dropped table"
KEY_METRICS = ("malloc_in_use_bytes", "duckdb_memory_bytes", "tables_resident")
SCALED_PARAMS = ("rows",)  # the rate and the duration stay
QUIESCENT_WAIT_S = 0.25  # at most this long, once a second, before the mark
DEFAULTS = {"duration": "PT30S", "tables_per_second": 5, "threads": 4, "rows": 10_000, "resident_tables": 100}
# Its length is a duration, not a count of units, and it marks once a second, not once
# a unit (a dropped table's number jumps): the looks of sequential stopping are counted
# in marks, so it runs its full length; its units come from ``units_in``.
DURATION_PARAM = "duration"
PARAM_MAXIMA = {"tables_per_second": 1_000, "threads": 256, "rows": 10_000_000, "resident_tables": 100_000}
PACED = True  # waits for its own rate: 4.6 s of CPU in a 150 s run at 5 tables/s

_ISO_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(value: str | int | float) -> float:
    """Seconds from a number or an ISO-8601 duration (``PT1M``, ``PT1H``), as
    ``java.time.Duration.parse`` accepted in the original."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError(f"duration must be positive, got {value!r}")
        return float(value)
    match = _ISO_DURATION.match(str(value).strip().upper())
    if not match or not any(match.groupdict().values()) or str(value).upper().endswith("T"):
        raise ValueError(f"duration {value!r} is neither seconds nor ISO-8601 like PT30S, PT1M, PT1H")
    parts = {k: float(v or 0) for k, v in match.groupdict().items()}
    seconds = parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be longer than zero")
    return seconds


def native_libraries() -> list[str]:
    """DuckDB's extension module (``_duckdb*.so`` beside the package, or inside it in
    older wheels): it links its own jemalloc (``duckdb_je_*``)."""
    import glob
    import os

    import duckdb

    package = os.path.dirname(duckdb.__file__)
    return glob.glob(os.path.join(package, "*.so")) + glob.glob(os.path.join(os.path.dirname(package), "*duckdb*.so"))


def units_in(params: dict) -> int:
    """Tables a run drops (its units): all it creates beyond the resident ones."""
    p = {**DEFAULTS, **params}
    return max(0, int(parse_duration(p["duration"]) * float(p["tables_per_second"])) - int(p["resident_tables"]))


def threads_allowed(version: str) -> bool:
    """Cursors can cross threads (and close on their own) from DuckDB 0.4 on."""
    major, minor = (int(part) for part in version.split(".")[:2])
    return (major, minor) >= (0, 4)


def duckdb_memory_bytes(con) -> int | None:
    """Sum of ``duckdb_memory()``'s memory_usage_bytes; None before DuckDB 0.10."""
    try:
        return int(con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()[0])
    except Exception:  # older versions have no such function
        return None


class TableLoader:
    """The task body and its shared bookkeeping (the oldest-table queue)."""

    def __init__(self, con, rows: int, resident: int):
        self.con, self.rows, self.resident = con, rows, resident
        self.lock = threading.Lock()
        self.live: collections.deque[str] = collections.deque()
        self.created = self.dropped = self.failed = 0
        self.finished = 0  # tasks ended, whether they failed or not
        self._local = threading.local()
        self.cursors: list = []  # one per worker thread, closed by close()

    def cursor(self):
        """This thread's cursor, opened on its first task and kept for the run: a
        cursor per task would make the binding's per-cursor memory (kept by the
        parent connection up to DuckDB 1.0) grow with the tables."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self.con.cursor()
            with self.lock:
                self.cursors.append(cur)
        return cur

    def close(self) -> None:
        """Close the worker threads' cursors (before the connection)."""
        with self.lock:
            cursors, self.cursors = self.cursors, []
        for cur in cursors:
            cur.close()

    def wait_idle(self, submitted: int, limit_s: float) -> bool:
        """Wait up to ``limit_s`` until every one of the ``submitted`` tasks has ended
        (none queued or in progress); whether they have."""
        deadline = time.monotonic() + limit_s
        while True:
            with self.lock:
                if self.finished >= submitted:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)

    def task(self, number: int, own_cursor: bool = True) -> None:
        try:
            self._table_task(number, own_cursor)
        finally:
            with self.lock:
                self.finished += 1

    def _table_task(self, number: int, own_cursor: bool) -> None:
        cur = self.cursor() if own_cursor else self.con
        try:
            name = f"T{number:09d}"
            cur.execute(f"CREATE TABLE {name} (id BIGINT, message VARCHAR)")
            if self.rows:
                cur.execute(
                    f"INSERT INTO {name} SELECT i, printf('Hello, %09d!', i) FROM range({self.rows}) t(i)"
                )
            count = cur.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            if count != self.rows:
                raise RuntimeError(f"{name}: {count} rows, expected {self.rows}")
            with self.lock:
                self.live.append(name)
                self.created += 1
                doomed = [self.live.popleft() for _ in range(max(0, len(self.live) - self.resident))]
            for old in doomed:
                cur.execute(f"DROP TABLE IF EXISTS {old}")
                with self.lock:
                    self.dropped += 1
        except Exception:
            with self.lock:
                self.failed += 1
            raise


class InlinePool:
    """DuckDB 0.3.x: every task on the calling thread, on the connection itself."""

    def __init__(self, max_workers: int):
        self.max_workers = max_workers

    def submit(self, fn, number: int) -> None:
        try:
            fn(number, own_cursor=False)
        except Exception:  # counted in tasks_failed, as the pool's futures would be
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def run(variant: str, params: dict, workdir: Path) -> None:
    """Submit table tasks at a fixed rate for ``duration``; mark every second."""
    import duckdb

    p = {**DEFAULTS, **params}
    duration = parse_duration(p["duration"])
    rate = float(p["tables_per_second"])
    con = duckdb.connect(":memory:")
    loader = TableLoader(con, int(p["rows"]) if variant == "load_on" else 0, int(p["resident_tables"]))
    threaded = threads_allowed(duckdb.__version__)
    mark(0, "start", tables_resident=0, duckdb_memory_bytes=duckdb_memory_bytes(con), threaded=int(threaded))
    start = time.monotonic()
    submitted, second, last_created = 0, 1, 0
    pool = ThreadPoolExecutor(max_workers=int(p["threads"])) if threaded else InlinePool(1)
    with pool:
        while (now := time.monotonic() - start) < duration:
            while submitted < rate * now:
                pool.submit(loader.task, submitted)
                submitted += 1
            if now >= second:
                # the heap read between tasks: a table half loaded is not what the
                # dropped ones left behind (it was most of the noise in the slopes)
                quiescent = loader.wait_idle(submitted, QUIESCENT_WAIT_S)
                with loader.lock:
                    created, dropped, failed, resident = loader.created, loader.dropped, loader.failed, len(loader.live)
                    cursors = len(loader.cursors)
                mark(dropped, "unit", seconds=second, tables_created=created, tables_dropped=dropped,
                     tasks_failed=failed, tables_resident=resident, cursors_opened=cursors, quiescent=int(quiescent),
                     tasks_per_second=created - last_created,
                     tasks_queued=submitted - created - failed, duckdb_memory_bytes=duckdb_memory_bytes(con))
                last_created = created
                second += 1
            time.sleep(min(1.0 / rate, 0.05))
    loader.close()
    con.close()


main = cli(run, VARIANTS)

if __name__ == "__main__":
    main()
