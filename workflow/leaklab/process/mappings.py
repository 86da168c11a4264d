"""Where in the address space the memory is: the process tree's mappings at each unit mark.

RSS says how much; ``/proc/<pid>/smaps`` says in what.  A leak through ``malloc`` grows
the brk heap or anonymous mappings (glibc serves requests above its mmap threshold, and
every thread arena, from anonymous mappings); a leak through ``mmap`` itself grows
anonymous mappings that no malloc profiler sees; a leak in a helper process grows
another pid.  Reading full ``smaps`` walks every mapping's pages under the process's
mmap lock, so it is read at unit marks (paced: ``leaklab.process.unit_readings``, which
takes it in the same instant as the unit's RSS), never at the sampler's 20 Hz.

Each reading is a set of rows (``mappings.parquet`` in the run directory):

- ``level == "process"``: one per live process, its own RSS and PSS and command line;
- ``level == "kind"``: its RSS and PSS by kind of mapping (:data:`KINDS`);
- ``level == "mapping"``: its :data:`TOP_MAPPINGS` largest mappings, with address range
  and name, so the one that grows can be named.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from leaklab.process import sampler

BRK_HEAP, ANONYMOUS, FILE_BACKED, STACK, SHARED, OTHER = (
    "brk heap", "anonymous mappings", "file-backed", "stacks", "shared memory", "kernel/other")
KINDS = (BRK_HEAP, ANONYMOUS, FILE_BACKED, STACK, SHARED, OTHER)
TOP_MAPPINGS = 5
COLUMNS = ("t", "unit", "pid", "ppid", "command", "level", "kind", "start", "end", "name", "rss_bytes", "pss_bytes")
_SMAPS_FIELDS = {"Rss:": "rss_bytes", "Pss:": "pss_bytes", "Private_Clean:": "private_bytes",
                 "Private_Dirty:": "private_bytes"}
SHARED_PREFIXES = ("/dev/shm/", "/memfd:", "/SYSV", "/dev/zero")


def kind_of(name: str, perms: str) -> str:
    """The kind of a mapping from its ``smaps`` header: path (or pseudo-name) and
    permissions (``s`` in the fourth place: shared)."""
    if name == "[heap]":
        return BRK_HEAP
    if name.startswith("[stack"):
        return STACK
    if name.startswith(SHARED_PREFIXES) or name.startswith("SYSV") or (len(perms) > 3 and perms[3] == "s"):
        return SHARED
    if name == "" or name.startswith("[anon"):
        return ANONYMOUS
    if name.startswith("/"):
        return FILE_BACKED
    return OTHER  # [vdso], [vvar], [vsyscall], anon_inode:...


def read_smaps(pid: int) -> list[dict]:
    """Every mapping of ``pid``: start, end, name, kind, RSS, PSS and private bytes.
    OSError when the process is gone."""
    out: list[dict] = []
    current: dict | None = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split(None, 5)
            if head and "-" in head[0] and not head[0].endswith(":"):
                start, _, end = head[0].partition("-")
                name = head[5].rstrip("\n") if len(head) > 5 else ""
                current = {"start": int(start, 16), "end": int(end, 16), "name": name,
                           "kind": kind_of(name, head[1]), "rss_bytes": 0, "pss_bytes": 0, "private_bytes": 0}
                out.append(current)
            elif current is not None and head and head[0] in _SMAPS_FIELDS:
                current[_SMAPS_FIELDS[head[0]]] += int(head[1]) * 1024
    return out


def _process_facts(pid: int) -> tuple[int, str]:
    """Parent pid and command line (untrusted bytes: decoded with replacement, cut short)."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    ppid = int(stat.rsplit(")", 1)[1].split()[1])
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    return ppid, cmdline[:300]


def read_tree(pids: list[int], t: float, unit: int | None) -> list[dict]:
    """One reading of every process in ``pids``: process, kind and top-mapping rows.
    A process that exits mid-read is left out: its ``smaps`` may be cut short."""
    rows: list[dict] = []
    for pid in pids:
        try:
            ppid, command = _process_facts(pid)
            maps = read_smaps(pid)
        except (OSError, ValueError, IndexError):
            continue
        if not maps or sampler.exiting(pid):  # a zombie, a kernel thread or a partial read
            continue
        sampler.ROLLUPS.store(pid, sum(m["pss_bytes"] for m in maps), sum(m["private_bytes"] for m in maps))
        base = {"t": t, "unit": unit, "pid": pid, "ppid": ppid, "command": command,
                "start": None, "end": None, "name": None}
        rows.append({**base, "level": "process", "kind": None, "rss_bytes": sum(m["rss_bytes"] for m in maps),
                     "pss_bytes": sum(m["pss_bytes"] for m in maps)})
        for kind in KINDS:
            of_kind = [m for m in maps if m["kind"] == kind]
            rows.append({**base, "level": "kind", "kind": kind, "rss_bytes": sum(m["rss_bytes"] for m in of_kind),
                         "pss_bytes": sum(m["pss_bytes"] for m in of_kind)})
        for m in sorted(maps, key=lambda m: m["rss_bytes"], reverse=True)[:TOP_MAPPINGS]:
            rows.append({**base, "level": "mapping", "kind": m["kind"], "start": m["start"], "end": m["end"],
                         "name": m["name"] or "[anonymous]", "rss_bytes": m["rss_bytes"], "pss_bytes": m["pss_bytes"]})
    return rows


def frame(rows: list[dict]) -> pd.DataFrame:
    """Reading rows as a frame with every column, typed, even when empty."""
    out = pd.DataFrame(rows, columns=list(COLUMNS))
    for column in ("unit", "pid", "ppid", "start", "end"):
        out[column] = out[column].astype("Int64")
    for column in ("t", "rss_bytes", "pss_bytes"):
        out[column] = out[column].astype("float64")
    for column in ("command", "level", "kind", "name"):
        out[column] = out[column].astype("object")
    return out


def _slope(units: pd.Series, values: pd.Series) -> float:
    """Bytes per unit, the Theil–Sen slope the verdicts fit to RSS
    (``leaklab.model.growth.slope_per_unit``), so a layer's growth and the RSS growth it
    is held against are measured alike: one unit that drops (a runtime handing pages
    back) moves neither; NaN with fewer than two distinct units."""
    if units.nunique() < 2:
        return float("nan")
    from scipy.stats import theilslopes  # here: every run imports this module, few fit with it

    y = values.astype("float64").to_numpy()
    if np.ptp(y) == 0:
        return 0.0
    return float(theilslopes(y, units.astype("float64").to_numpy())[0])


def after_warmup(readings: pd.DataFrame, warmup_units: int) -> pd.DataFrame:
    """Readings past the warm-up (``unit > warmup_units``, as the verdicts count them),
    or all of them when fewer than two units remain."""
    kept = readings[readings["unit"] > warmup_units]
    return kept if kept["unit"].nunique() >= 2 else readings


def process_growth(readings: pd.DataFrame, warmup_units: int = 0) -> pd.DataFrame:
    """Each process's own RSS and PSS growth per unit (pid, parent, command line),
    the fastest-growing first: a leak in a child or helper is named by its pid."""
    procs = after_warmup(readings[readings["level"] == "process"], warmup_units)
    rows = []
    for pid, group in procs.groupby("pid"):
        rows.append({"pid": int(pid), "ppid": int(group["ppid"].iloc[-1]), "command": group["command"].iloc[-1],
                     "readings": len(group), "rss_growth_per_unit": _slope(group["unit"], group["rss_bytes"]),
                     "pss_growth_per_unit": _slope(group["unit"], group["pss_bytes"]),
                     "last_rss_bytes": float(group["rss_bytes"].iloc[-1])})
    out = pd.DataFrame(rows, columns=["pid", "ppid", "command", "readings", "rss_growth_per_unit",
                                      "pss_growth_per_unit", "last_rss_bytes"])
    return out.sort_values("rss_growth_per_unit", ascending=False, na_position="last").reset_index(drop=True)


def mapping_growth(readings: pd.DataFrame, warmup_units: int = 0, top: int = TOP_MAPPINGS) -> pd.DataFrame:
    """The largest mappings of each process at its last reading and how much each grew
    since the first reading past the warm-up.  Adjacent anonymous mappings merge and
    move their start (mmap grows down), so a mapping's earlier size is that of the
    mappings of the same name overlapping its range then (0 where none was among the
    largest: a mapping that was small then)."""
    maps = after_warmup(readings[readings["level"] == "mapping"], warmup_units)
    rows = []
    for pid, group in maps.groupby("pid"):
        first_unit, last_unit = group["unit"].min(), group["unit"].max()
        first, last = group[group["unit"] == first_unit], group[group["unit"] == last_unit]
        for _, m in last.iterrows():
            before = first[(first["name"] == m["name"]) & (first["start"] < m["end"]) & (first["end"] > m["start"])]
            grown = float(m["rss_bytes"] - before["rss_bytes"].sum())
            units = int(last_unit - first_unit)
            rows.append({"pid": int(pid), "command": m["command"], "kind": m["kind"], "name": m["name"],
                         "range": f"{int(m['start']):x}-{int(m['end']):x}", "rss_bytes": float(m["rss_bytes"]),
                         "rss_growth_per_unit": grown / units if units else float("nan")})
    out = pd.DataFrame(rows, columns=["pid", "command", "kind", "name", "range", "rss_bytes", "rss_growth_per_unit"])
    return out.sort_values("rss_growth_per_unit", ascending=False).groupby("pid").head(top).reset_index(drop=True)
