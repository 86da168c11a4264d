"""The profiler modules against the real tools on processes whose leak we know.

``tests/leaky.c`` mallocs N blocks of SIZE bytes from ``leak_here`` and frees them
or not; a Python snippet leaks N blocks through ctypes' ``malloc``.  Each native
profiler must name ``leak_here`` (or, for ctypes, the first non-glue frame) with
bytes within 20% of N*SIZE, and must not name it when the blocks are freed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from leaklab.profilers import heaptrack, jemalloc, massif, stacks, tracemalloc as tm
from leaklab.profilers.errors import ParseError

N_BLOCKS = 200
BLOCK = 64 * 1024
LEAKED = N_BLOCKS * BLOCK
TOLERANCE = 0.20
WORKFLOW = Path(__file__).resolve().parents[1] / "workflow"

# Sampling every ~4 KiB makes jemalloc's estimate of 64 KiB blocks exact (each block
# is sampled with probability 1 - e^-16); dumps every 1 MiB give a timeline.
SETTINGS = {
    "massif": {},
    "jemalloc": {"lg_prof_sample": 12, "lg_prof_interval": 20},
    "heaptrack": {},
}
MODULES = {"massif": massif, "jemalloc": jemalloc, "heaptrack": heaptrack}

CTYPES_LEAK = textwrap.dedent("""
    import ctypes, sys
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    n, size = int(sys.argv[1]), int(sys.argv[2])
    blocks = [libc.malloc(size) for _ in range(n)]
    for block in blocks:
        ctypes.memset(block, 1, size)
""")


def close_to(value: int, expected: int) -> bool:
    return abs(value - expected) <= TOLERANCE * expected


@pytest.fixture(scope="module")
def leaky(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bin") / "leaky"
    src = Path(__file__).with_name("leaky.c")
    subprocess.run(["gcc", "-g", "-O0", "-o", str(out), str(src)], check=True)
    return out


@pytest.fixture(scope="module")
def ctypes_script(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("py") / "ctypes_leak.py"
    path.write_text(CTYPES_LEAK)
    return path


@pytest.fixture(scope="module")
def profiled(tmp_path_factory, leaky, ctypes_script):
    """``profiled(profiler, workload)`` -> (rundir, collected frames), each run once."""
    cache: dict[tuple[str, str], tuple[Path, dict]] = {}
    workloads = {
        "leak": [str(leaky), "leak", str(N_BLOCKS), str(BLOCK)],
        "no_leak": [str(leaky), "no_leak", str(N_BLOCKS), str(BLOCK)],
        "ctypes": [sys.executable, str(ctypes_script), str(N_BLOCKS), str(BLOCK)],
    }

    def get(profiler: str, workload: str) -> tuple[Path, dict]:
        key = (profiler, workload)
        if key not in cache:
            rundir = tmp_path_factory.mktemp(f"{profiler}-{workload}")
            module = MODULES[profiler]
            cmd, env = module.wrap(workloads[workload], dict(os.environ), rundir, SETTINGS[profiler])
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120,
                                  start_new_session=True)
            assert proc.returncode == 0, proc.stderr[-2000:]
            cache[key] = (rundir, module.collect(rundir))
        return cache[key]

    return get


def leaked_sites(result: dict) -> pd.DataFrame:
    sites = result["top_sites"]
    return sites[sites["kind"] == "leaked"]


def check_frames(result: dict) -> None:
    """The tidy shape every collect promises."""
    assert list(result["heap_timeline"].columns) == ["t", "heap_bytes", "source"]
    assert list(result["top_sites"].columns) == ["rank", "bytes", "count", "frame", "native_caller", "stack", "kind"]
    for _, group in result["top_sites"].groupby("kind"):
        assert list(group["rank"]) == list(range(1, len(group) + 1))
        assert group["bytes"].is_monotonic_decreasing


# ------------------------------------------------------------------ native tools on C

@pytest.mark.slow
@pytest.mark.parametrize("profiler", ["massif", "jemalloc", "heaptrack"])
def test_finds_leak_here(profiled, profiler):
    _, result = profiled(profiler, "leak")
    check_frames(result)
    sites = leaked_sites(result)
    top = sites.iloc[0]
    assert "leak_here" in top["frame"], sites
    assert close_to(int(top["bytes"]), LEAKED), (top["bytes"], LEAKED)
    assert top["stack"].split(";")[0].startswith("leak_here")


@pytest.mark.slow
@pytest.mark.parametrize("profiler", ["massif", "jemalloc", "heaptrack"])
def test_no_leak_no_leak_here(profiled, profiler):
    _, result = profiled(profiler, "no_leak")
    check_frames(result)
    assert not leaked_sites(result)["frame"].str.contains("leak_here").any()


@pytest.mark.slow
@pytest.mark.parametrize("profiler", ["massif", "jemalloc", "heaptrack"])
def test_ctypes_leak_named_past_the_glue(profiled, profiler):
    _, result = profiled(profiler, "ctypes")
    check_frames(result)
    top = leaked_sites(result).iloc[0]
    assert close_to(int(top["bytes"]), LEAKED), (top["bytes"], LEAKED)
    assert not re.search(r"ffi|ctypes|PyCFuncPtr", top["frame"]), top["frame"]
    assert re.search(r"_ctypes_callproc|PyCFuncPtr_call", top["stack"]), top["stack"]


# ------------------------------------------------------------------------------ massif

def test_massif_timeline_and_peak(profiled):
    rundir, result = profiled("massif", "leak")
    parsed = massif.parse_massif(rundir / "massif.out")
    assert parsed["time_unit"] == "ms" and parsed["peak"] is not None
    timeline = result["heap_timeline"]
    heap = timeline[timeline["source"] == "massif"]
    assert len(heap) == len(parsed["snapshots"])
    assert close_to(int(heap["heap_bytes"].max()), LEAKED)
    assert set(timeline["source"]) == {"massif", "massif-extra"}
    peak = result["top_sites"][result["top_sites"]["kind"] == "peak"].iloc[0]
    assert "leak_here" in peak["frame"] and close_to(int(peak["bytes"]), LEAKED)


def test_massif_site_timeline_grows_with_the_leak(profiled):
    """The site that leaks is named at every detailed snapshot, its bytes rising to the leak."""
    rundir, result = profiled("massif", "leak")
    sites = result["site_timeline"]
    assert list(sites.columns) == ["t", "site", "bytes", "heap_bytes", "source"]
    leaking = sites[sites["site"].str.contains("leak_here")].sort_values("t")
    assert len(leaking) >= 3 and leaking["bytes"].is_monotonic_increasing
    assert close_to(int(leaking["bytes"].iloc[-1]), LEAKED)
    assert (sites["bytes"] <= sites["heap_bytes"]).all()


def test_massif_wrap_command(tmp_path):
    cmd, env = massif.wrap(["prog", "x"], {"PATH": "/bin"}, tmp_path, {"pages_as_heap": True, "depth": 12})
    assert cmd[:2] == ["valgrind", "--tool=massif"] and cmd[-2:] == ["prog", "x"]
    assert "--pages-as-heap=yes" in cmd and "--depth=12" in cmd and "--detailed-freq=1" in cmd
    assert f"--massif-out-file={tmp_path / 'massif.out'}" in cmd
    assert env["PYTHONMALLOC"] == "malloc" and env["PATH"] == "/bin"
    assert env["GOMAXPROCS"] == "1"  # valgrind runs one thread at a time: a Go scheduler with more spins
    _, env = massif.wrap(["prog"], {"GOMAXPROCS": "4"}, tmp_path, {"gomaxprocs": None})
    assert env["GOMAXPROCS"] == "4"


def test_massif_truncated_file(profiled, tmp_path):
    rundir, _ = profiled("massif", "leak")
    lines = (rundir / "massif.out").read_text().splitlines(keepends=True)
    last_tree = max(i for i, line in enumerate(lines) if line.startswith(" n"))
    for cut in (last_tree, len("".join(lines)) // 2):  # mid-tree at a line end; mid-line
        path = tmp_path / f"cut{cut}.out"
        text = "".join(lines[:cut]) if cut == last_tree else "".join(lines)[:cut]
        path.write_text(text)
        with pytest.raises(ParseError, match=re.escape(str(path))):
            massif.parse_massif(path)


def test_massif_garbage_and_missing(tmp_path):
    garbage = tmp_path / "garbage.out"
    garbage.write_bytes(os.urandom(2000).replace(b"\n", b"x") + b"\nhello world\n")
    with pytest.raises(ParseError, match=re.escape(str(garbage))):
        massif.parse_massif(garbage)
    text = tmp_path / "text.out"
    text.write_text("desc: x\ncmd: y\ntime_unit: ms\nthis is not massif\n")
    with pytest.raises(ParseError, match=re.escape(str(text))):
        massif.parse_massif(text)
    with pytest.raises(ParseError, match=re.escape(str(tmp_path / "massif.out"))):
        massif.collect(tmp_path)


def test_pick_frame_skips_glue_but_not_everything():
    F = stacks.Frame
    frames = [F("malloc"), F("???", "", "/usr/lib/libffi.so.8"), F("ffi_call"), F("_ctypes_callproc", "callproc.c:1"),
              F("_PyObject_MakeTpCall", "call.c:214")]
    assert stacks.pick_frame(frames) == 4
    assert stacks.pick_frame([F("malloc"), F("ffi_call")]) == 1
    assert stacks.pick_frame([F("operator new(unsigned long)")]) == 0
    assert massif.split_location("f(int) (a.c:3)") == ("f(int)", "a.c:3")
    assert massif.split_location("(below main) (libc.h:58)") == ("(below main)", "libc.h:58")


# ---------------------------------------------------------------------------- jemalloc

def test_jemalloc_timeline_growth_and_artifacts(profiled):
    rundir, result = profiled("jemalloc", "leak")
    timeline = result["heap_timeline"]
    intervals = timeline[timeline["source"] == "jemalloc-interval"]
    assert len(intervals) >= 5  # one dump per MiB allocated
    assert intervals["heap_bytes"].is_monotonic_increasing
    assert (timeline["t"] >= 0).all() and (timeline["t"] < 60).all()
    final = timeline[timeline["source"] == "jemalloc-final"]
    assert close_to(int(final["heap_bytes"].iloc[0]), LEAKED)
    growth = result["top_sites"][result["top_sites"]["kind"] == "growth"]
    assert "leak_here" in growth.iloc[0]["frame"]
    assert "leak_here" in (rundir / "jemalloc.collapsed").read_text()


@pytest.mark.slow
def test_jemalloc_total_matches_jeprof(profiled):
    rundir, _ = profiled("jemalloc", "ctypes")
    total = re.search(r"^Total: (-?\d+) B", (rundir / "jemalloc.txt").read_text(), re.M)
    assert total, "jeprof --text gave no Total line"
    assert abs(jemalloc.heap_total_bytes(jemalloc.find_dumps(rundir)["final"]) - int(total.group(1))) <= 1


def test_jemalloc_wrap_env(tmp_path):
    cmd, env = jemalloc.wrap([sys.executable, "-c", "pass"], {"LD_PRELOAD": "libother.so", "PATH": os.environ["PATH"]},
                             tmp_path, {"lg_prof_interval": -1})
    assert cmd == [sys.executable, "-c", "pass"]
    assert env["LD_PRELOAD"] == f"{jemalloc.LIBRARY}:libother.so"
    assert "lg_prof_interval:-1" in env["MALLOC_CONF"] and "lg_prof_sample:17" in env["MALLOC_CONF"]
    assert f"prof_prefix:{tmp_path / 'jeprof'}" in env["MALLOC_CONF"]
    assert jemalloc.read_meta(tmp_path)["binary"] == os.path.realpath(sys.executable)


def test_jemalloc_missing_and_truncated(profiled, tmp_path):
    with pytest.raises(ParseError, match=re.escape(str(tmp_path / "jemalloc.json"))):
        jemalloc.collect(tmp_path)
    rundir, _ = profiled("jemalloc", "leak")
    final = jemalloc.find_dumps(rundir)["final"]
    text = final.read_text()
    for n, cut_at in enumerate((text.index("MAPPED_LIBRARIES") - 5, len(text) - 5)):  # stacks; maps mid-line
        cut = tmp_path / f"{n}.{final.name}"
        cut.write_text(text[:cut_at])
        with pytest.raises(ParseError, match=re.escape(str(cut))):
            jemalloc.heap_total_bytes(cut)


# --------------------------------------------------------------------------- heaptrack

def test_heaptrack_counts_summary_timeline(profiled):
    rundir, result = profiled("heaptrack", "leak")
    top = leaked_sites(result).iloc[0]
    assert int(top["count"]) == N_BLOCKS
    summary = result["summary"].iloc[0]
    assert close_to(int(summary["leaked_bytes"]), LEAKED) and close_to(int(summary["peak_bytes"]), LEAKED)
    assert int(summary["allocations"]) >= N_BLOCKS
    peak = result["top_sites"][result["top_sites"]["kind"] == "peak"].iloc[0]
    assert "leak_here" in peak["frame"]
    timeline = result["heap_timeline"]
    assert len(timeline) and set(timeline["source"]) == {"heaptrack"}
    assert close_to(int(timeline["heap_bytes"].max()), LEAKED)
    assert "leak_here" in (rundir / "heaptrack.collapsed").read_text()


def test_heaptrack_missing_and_corrupt(profiled, tmp_path):
    with pytest.raises(ParseError, match=re.escape(str(tmp_path))):
        heaptrack.collect(tmp_path)
    rundir, _ = profiled("heaptrack", "leak")
    data = heaptrack.find_data_file(rundir)
    (tmp_path / data.name).write_bytes(data.read_bytes()[: data.stat().st_size // 3])
    with pytest.raises(ParseError, match=re.escape(str(tmp_path / data.name))):
        heaptrack.collect(tmp_path)
    assert heaptrack.parse_size("13.11M") == 13_110_000 and heaptrack.parse_size("960B") == 960


# ------------------------------------------------------------------------- tracemalloc

GROWER = textwrap.dedent("""
    from leaklab.experiments import marks
    from leaklab.profilers.tracemalloc import dump_snapshot

    marks.start_tracing_if_asked()
    kept = []

    def grow():
        kept.append([bytearray(1000) for _ in range(500)])  # GROW LINE

    for unit in range(1, 6):
        grow()
        dump_snapshot(unit)
""")


def test_tracemalloc_growth(tmp_path):
    script = tmp_path / "grower.py"
    script.write_text(GROWER)
    grow_line = next(i for i, line in enumerate(GROWER.splitlines(), 1) if "GROW LINE" in line)
    rundir = tmp_path / "run"
    rundir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(WORKFLOW)}
    cmd, env = tm.wrap([sys.executable, str(script)], env, rundir, {"frames": 5})
    assert cmd == [sys.executable, str(script)] and env[tm.FRAMES_ENV] == "5"
    subprocess.run(cmd, env=env, check=True, timeout=60, start_new_session=True)

    result = tm.collect(rundir)
    check_frames(result)
    timeline = result["heap_timeline"]
    assert list(timeline["t"]) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert timeline["heap_bytes"].is_monotonic_increasing
    top = result["top_sites"].iloc[0]
    assert top["kind"] == "growth" and top["frame"] == f"{script}:{grow_line}"
    assert close_to(int(top["bytes"]), 4 * 500 * 1000)  # units 2..5 over the unit-1 baseline
    assert int(top["count"]) >= 4 * 500
    assert top["stack"].split(";")[0] == top["frame"] and len(top["stack"].split(";")) >= 2

    marks = pd.DataFrame({"t": [0.5, 10.0, 11.0, 12.0, 13.0, 14.0], "unit": pd.array([None, 1, 2, 3, 4, 5], "Int64"),
                          "phase": ["start", "unit", "unit", "unit", "unit", "unit"]})
    assert list(tm.collect(rundir, marks)["heap_timeline"]["t"]) == [10.0, 11.0, 12.0, 13.0, 14.0]

    (rundir / "tracemalloc" / "unit_6.snap").write_bytes(b"\x80\x04garbage")
    with pytest.raises(ParseError, match="unit_6.snap"):
        tm.collect(rundir)


def test_tracemalloc_dump_is_noop_unless_asked(monkeypatch):
    monkeypatch.delenv(tm.DIR_ENV, raising=False)
    assert tm.dump_snapshot(1) is None


def test_profilers_do_not_import_pandas():
    code = ("import sys; import leaklab.profilers.massif, leaklab.profilers.jemalloc, "
            "leaklab.profilers.heaptrack, leaklab.profilers.tracemalloc; "
            "sys.exit('pandas' in sys.modules)")
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(WORKFLOW)}, check=True)


def test_tools_present():
    for tool in ("valgrind", "heaptrack", "heaptrack_print", "jeprof", "gcc"):
        assert shutil.which(tool), tool
    assert Path(jemalloc.LIBRARY).exists()


def synthetic_recording(path: Path, units: int = 10) -> pd.DataFrame:
    """A heaptrack recording (heaptrack_interpret's text format, gzip'd) in which
    ``grow_here`` keeps 3 blocks of 100 B per unit and frees them all at the end,
    while ``steady`` allocates and frees 1000 B every unit; and its unit marks."""
    import gzip

    lines = ["v 10400 3", "X synthetic", "s 9 grow_here", "s 6 steady", "s 7 libx.so",
             "i 1000 3 1", "i 2000 3 2", "t 1 0", "t 2 0", "a 64 1", "a 3e8 2"]
    kept = 0
    for unit in range(units + 1):
        lines.append(f"c {(unit * 1000 + 500):x}")
        lines += ["+ 1", "- 1"]
        if unit:
            lines += ["+ 0"] * 3
            kept += 3
    lines.append(f"c {((units + 1) * 1000 + 500):x}")
    lines += ["- 0"] * kept
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return pd.DataFrame({"t": [unit + 1.0 for unit in range(units + 1)], "unit": [float(u) for u in range(units + 1)],
                         "phase": ["unit"] * (units + 1)})


def test_heaptrack_growth_sites_from_the_recording(tmp_path):
    data = tmp_path / "heaptrack.gz"
    marks = synthetic_recording(data)
    table = tmp_path / "heaptrack.growth.tsv"
    sites = heaptrack.growth_sites(data, marks, from_unit=2, table=table)
    assert list(sites["frame"]) == ["grow_here (libx.so)"]  # steady never grows; the growth is freed at exit
    assert int(sites["bytes"].iloc[0]) == 300 * 8 and int(sites["count"].iloc[0]) == 3 * 8  # units 2 to 10
    assert set(sites["kind"]) == {"growth"}
    assert table.read_text().splitlines()[2].startswith("300.00\tgrow_here (libx.so)")
    assert heaptrack.growth_sites(data, marks, from_unit=9).empty  # fewer than 3 units to fit
