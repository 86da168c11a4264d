"""Where the memory is: a real C program grows memory in one chosen place (an anonymous
mmap outside malloc, the brk heap, a forked child), run as a command experiment under
the runner; the mappings read at its unit marks must place the growth there."""

import json
import shutil
import subprocess

import pandas as pd
import places_runs
import pytest
from leaklab.model import growth
from leaklab.process import mappings
from leaklab.tables import attribution, placement
from measuring import measure

MIB = 2**20
STEPS = 30


@pytest.fixture(scope="module")
def places_leak(root, tmp_path_factory) -> str:
    if not shutil.which("cc"):
        pytest.skip("no C compiler")
    exe = tmp_path_factory.mktemp("bin") / "places_leak"
    subprocess.run(["cc", "-O0", "-o", str(exe), str(root / "tests" / "data" / "places_leak.c")], check=True)
    return str(exe)


def _run(exe: str, mode: str, outdir, extra: dict | None = None) -> tuple[dict, pd.DataFrame]:
    entry = {"command": f"{exe} {{mode}} {STEPS} {MIB}", "variants": {mode: {"params": {"mode": mode}}},
             "unit": "step", "unit_pattern": "step (\\d+)", **(extra or {})}
    meta = measure("places", mode, outdir, {"mode": mode}, {"experiments": {"places": entry}}, timeout_s=120)
    return meta, pd.read_parquet(outdir / "mappings.parquet")


def test_kinds_of_mappings_from_their_smaps_headers():
    assert mappings.kind_of("[heap]", "rw-p") == mappings.BRK_HEAP
    assert mappings.kind_of("", "rw-p") == mappings.ANONYMOUS
    assert mappings.kind_of("[anon:glibc: malloc arena]", "rw-p") == mappings.ANONYMOUS
    assert mappings.kind_of("", "rw-s") == mappings.SHARED
    assert mappings.kind_of("/dev/shm/x (deleted)", "rw-s") == mappings.SHARED
    assert mappings.kind_of("/usr/lib/libc.so.6", "r-xp") == mappings.FILE_BACKED
    assert mappings.kind_of("[stack]", "rw-p") == mappings.STACK
    assert mappings.kind_of("[vdso]", "r-xp") == mappings.OTHER


def test_an_mmap_leak_is_placed_in_anonymous_mappings(places_leak, tmp_path):
    meta, readings = _run(places_leak, "mmap", tmp_path)
    assert meta["status"] == "ok" and meta["mappings_readings"] >= 5
    kinds = placement.kind_growth([readings], warmup_units=2).set_index("kind")["rss_growth_per_unit"]
    assert kinds[mappings.ANONYMOUS] == pytest.approx(MIB, rel=0.10)
    assert abs(kinds[mappings.BRK_HEAP]) < 0.05 * MIB
    grown = mappings.mapping_growth(readings, warmup_units=2).iloc[0]
    assert grown["name"] == "[anonymous]" and grown["rss_growth_per_unit"] == pytest.approx(MIB, rel=0.10)


def test_a_childs_leak_is_named_by_its_pid_and_command(places_leak, tmp_path):
    meta, readings = _run(places_leak, "child", tmp_path)
    assert meta["status"] == "ok"
    procs = mappings.process_growth(readings, warmup_units=2)
    assert len(procs) == 2
    leaker, parent = procs.iloc[0], procs.iloc[1]
    assert leaker["ppid"] == parent["pid"] and "places_leak child" in leaker["command"]
    assert leaker["rss_growth_per_unit"] == pytest.approx(MIB, rel=0.10)
    assert abs(parent["rss_growth_per_unit"]) < 0.05 * MIB
    # the attribution names the child, and places the growth in the brk heap (small mallocs)
    keys = {"experiment": "places", "variant": "child", "profiler": "plain", "replicate": 1, "unit": "step"}
    growth = pd.DataFrame([{**keys, "metric": "rss_bytes", "growth_per_unit": float(leaker["rss_growth_per_unit"]),
                            "retained": float("nan"), "verdict": "leak"}])
    table = attribution.table(growth, None, placement.kind_growth([readings], 2).assign(**keys),
                              procs.assign(**keys)).set_index("layer")
    named = table[table["where"] == "grows here"].index
    assert f"process {leaker['pid']}: {leaker['command']}" in named
    assert attribution.MAPPING_PREFIX + mappings.BRK_HEAP in named
    assert table.loc["RSS (total)", "placed_growth_per_unit"] == pytest.approx(leaker["rss_growth_per_unit"], rel=0.1)
    # a read unit mark's RSS is the reading's: the program's own when its line gave it, the tree's when the sampler did
    series = pd.DataFrame({"unit": [1, 2, 3, 999], "t": [0.0] * 4, "rss_bytes": [-1.0] * 4})
    procs = readings[readings["level"] == "process"]
    for own_line, whose in ((True, procs["pid"] == parent["pid"]), (False, procs["pid"] > 0)):
        replaced = placement.rss_at_readings(series, readings, own_line).set_index("unit")["rss_bytes"]
        expected = procs[whose].groupby("unit")["rss_bytes"].sum()
        assert replaced[999] == -1 and all(replaced[u] == expected[u] for u in (1, 2, 3) if u in expected.index)
        assert (replaced.drop(999) > 0).sum() == len({1, 2, 3} & set(expected.index)) >= 2


@pytest.fixture(scope="module")
def three_places(places_leak, tmp_path_factory):
    base = tmp_path_factory.mktemp("places")
    got, _ = places_runs.run_modes(places_leak, ("malloc", "mmap", "none"), base, steps=STEPS, step_bytes=MIB,
                                   verdict={"malloc_in_use_bytes": {"leak_per_unit": 256 * 1024,
                                                                    "retained": 16 * MIB}})
    return base, got


def test_a_c_programs_glibc_heap_is_measured_through_command_and_judged(three_places):
    """No change to the program: glibc's libmemusage is preloaded, read at unit marks,
    and the malloc_in_use_bytes threshold of the config decides a verdict."""
    base, got = three_places
    meta = json.loads((base / "places" / "malloc" / "plain" / "rep1" / "meta.json").read_text())
    assert "libmemusage" in meta["heap_metric"]["source"]
    growth = got["growth"].set_index(["variant", "metric"])
    assert growth.loc[("malloc", "malloc_in_use_bytes"), "verdict"] == "leak"
    assert growth.loc[("malloc", "malloc_in_use_bytes"), "growth_per_unit"] == pytest.approx(MIB, rel=0.10)
    assert growth.loc[("mmap", "malloc_in_use_bytes"), "verdict"] != "leak"  # mmap is outside malloc
    attributed = got["attribution"].set_index(["variant", "layer"])
    anonymous = attributed.loc[("mmap", attribution.MAPPING_PREFIX + mappings.ANONYMOUS)]
    assert anonymous["where"] == "grows here" and anonymous["explanation"] == attribution.OUTSIDE_MALLOC
    # every variant's growth is placed in layers that add up to its RSS growth
    for variant in ("malloc", "mmap"):
        total = attributed.loc[(variant, "RSS (total)")]
        assert total["placed_growth_per_unit"] == pytest.approx(total["growth_per_unit"], rel=0.10)


def test_no_heap_metric_for_a_static_program_or_a_shell_is_a_config_error(root, tmp_path):
    """The threshold is refused before any job runs, with the reason, never dropped."""
    from leaklab.measure.config_check import ConfigError, _check_heap_metric

    static = tmp_path / "places_static"
    built = subprocess.run(["cc", "-static", "-O0", "-o", str(static), str(root / "tests" / "data" / "places_leak.c")],
                           capture_output=True, text=True, check=False)
    if built.returncode != 0:
        pytest.skip(f"no static libc: {built.stderr[-200:]}")
    where = "experiments.places.verdict"
    with pytest.raises(ConfigError, match=r"verdict\.malloc_in_use_bytes: .*statically linked"):
        _check_heap_metric({"command": f"{static} malloc 3 1024"}, where)
    with pytest.raises(ConfigError, match=r"malloc_in_use_bytes: .*shell"):
        _check_heap_metric({"command": "sh -c 'true'"}, where)
    _check_heap_metric({"command": "{setup_dir}/built_later"}, where)  # checked when it runs


def test_a_profiler_that_sees_none_of_the_growth_is_told_why(three_places):
    """heaptrack's view of the mmap leak (none of it: mmap is outside malloc) is explained
    by its blind spot and the layer that holds the growth, never a bare False."""
    _, got = three_places
    rss = got["growth"].set_index(["variant", "metric"]).loc[("mmap", "rss_bytes")]
    agreement = pd.DataFrame([{"experiment": "places", "variant": "mmap", "profiler": "heaptrack", "ratio": 0.0,
                               "agrees": False, "plain_rss_verdict": rss["verdict"]}])
    why = attribution.explain_agreement(agreement, got["attribution"])["why"].iloc[0]
    assert "none of the RSS growth" in why or "0%" in why
    assert "not mmap outside malloc" in why and attribution.OUTSIDE_MALLOC in why
    visibility = attribution.explain_visibility(
        pd.DataFrame([{"experiment": "places", "profiler": "heaptrack", "note": ""}]), got["attribution"])
    assert "mmap: " in visibility["growth_in"].iloc[0] and visibility["cannot_see"].iloc[0]


def test_smaps_rollup_is_walked_at_most_once_a_second_and_fresh_at_the_end(monkeypatch):
    """The 20 Hz sampler reads RSS from status at every sample; the costly page-table
    walk of smaps_rollup happens at most once a second, and at the final sample."""
    import os
    import time

    from leaklab.process import sampler

    walks = []
    real = sampler._smaps_rollup
    monkeypatch.setattr(sampler, "_smaps_rollup", lambda pid: walks.append(time.monotonic()) or real(pid))
    monkeypatch.setattr(sampler, "ROLLUPS", sampler.Rollups())
    start = time.monotonic()
    rows = []
    while time.monotonic() - start < 2.0:
        rows.append(sampler.sample(os.getpid(), time.monotonic() - start))
        time.sleep(0.05)
    assert len(rows) >= 20 and all(r["pss_bytes"] > 0 for r in rows)  # every sample carries PSS
    assert len(walks) <= 3
    before = len(walks)
    sampler.sample(os.getpid(), 2.0, final=True)
    assert len(walks) == before + 1


def test_a_unit_mark_reading_refreshes_pss_and_uss(monkeypatch):
    """Full smaps at a unit mark gives the same PSS and private bytes as smaps_rollup: the
    sample after it uses them instead of walking the page tables again."""
    import os

    from leaklab.process import sampler

    monkeypatch.setattr(sampler, "ROLLUPS", sampler.Rollups())
    mappings.read_tree([os.getpid()], 0.0, 1)
    monkeypatch.setattr(sampler, "_smaps_rollup", lambda pid: pytest.fail("walked again"))
    row = sampler.sample(os.getpid(), 0.1)
    assert row["pss_bytes"] > 0 and row["uss_bytes"] > 0


def test_a_reading_that_overlaps_the_exit_is_left_out(places_leak):
    """A read of ``smaps`` that the process's exit overtakes returns only the mappings
    not yet torn down: a fall in memory that never happened.  Read in a tight loop
    while the program exits, no reading of it may lose its heap."""
    partial = readings = 0
    for _ in range(20):
        proc = subprocess.Popen([places_leak, "malloc", "1", str(8 * MIB)], stdout=subprocess.PIPE)
        proc.stdout.readline()
        whole = None
        while proc.poll() is None:
            for row in mappings.read_tree([proc.pid], 0.0, 1):
                if row["level"] == "process":
                    whole = whole or row["rss_bytes"]
                    readings += 1
                    partial += row["rss_bytes"] < 0.9 * whole
        proc.stdout.close()
    assert readings > 100 and partial == 0


def test_memory_that_rises_and_falls_within_each_unit_is_placed_where_its_rss_grows(tmp_path):
    """``planted`` ``wave`` keeps 256 KiB a step and holds 4 times what it keeps in scratch
    pages through every step, unmapped just before its mark: a reading taken after the
    mark, while the next step fills its scratch, placed 3.3 and 4.1 times the RSS growth
    (2026-12-06, the reader polled from the sampling loop).  The step waits at its mark
    for the reading, so the layers add up to the growth of the RSS the mark itself read."""
    meta = measure("planted", "wave", tmp_path, {"steps": 40, "interval_s": 0.05}, timeout_s=120)
    assert meta["status"] == "ok" and meta["mappings_readings"] >= 5
    readings = pd.read_parquet(tmp_path / "mappings.parquet")
    placed = placement.kind_growth([readings], warmup_units=2)["rss_growth_per_unit"].sum()
    marks = pd.read_parquet(tmp_path / "marks.parquet")
    units = marks[(marks["phase"] == "unit") & (marks["unit"] > 2)]
    rss = growth.slope_per_unit(units["unit"], units["rss_bytes"])
    assert rss == pytest.approx(256 * 1024, rel=0.10)
    assert placed == pytest.approx(rss, rel=0.10)
    at_marks = readings[readings["level"] == "process"].set_index("unit")["rss_bytes"]
    own = units.set_index("unit")["rss_bytes"].reindex(at_marks.index).dropna()
    assert len(own) >= 4 and (abs(at_marks[own.index] - own) < 0.5 * MIB).all()  # never a step's scratch


def test_memory_handed_from_one_kind_of_mapping_to_another_is_placed_where_the_rss_grows(places_leak, tmp_path):
    """``handover``: the brk heap grows 1 MiB a step for 21 steps, is freed and trimmed
    (memory that falls), then anonymous mmap grows 1 MiB a step; two replicates.  Each
    kind fitted on its own (Theil–Sen is not additive) and the median of the replicates
    (the RSS growth is pooled over them) placed a seventh of the growth (0.14 MiB of 0.99,
    2026-12-06); now the kinds split the RSS growth at the same readings with the
    verdicts' own pooled estimator, so they add up to it exactly, and to the growth of
    the RSS the verdict judges within 10 %."""
    from scipy.stats import theilslopes

    from leaklab.model.intervals import pooled_slope

    got, metas = places_runs.run_modes(places_leak, ("handover", "none"), tmp_path, steps=STEPS, step_bytes=MIB,
                                       verdict={}, replicates=2)
    assert all(meta["status"] == "ok" and meta["mappings_readings"] >= 20 for meta in metas.values())
    runs = [pd.read_parquet(tmp_path / "places" / "handover" / "plain" / f"rep{r}" / "mappings.parquet")
            for r in (1, 2)]
    totals = [run[(run["level"] == "process") & (run["unit"] > 2)].groupby("unit")["rss_bytes"].sum() for run in runs]
    at_readings = pooled_slope([(t.index.to_numpy(float), t.to_numpy(float)) for t in totals]).slope
    assert at_readings == pytest.approx(MIB, rel=0.10)
    rss = got["attribution"].set_index(["variant", "layer"]).loc[("handover", "RSS (total)")]
    assert rss["placed_growth_per_unit"] == pytest.approx(at_readings, rel=1e-9)
    assert rss["growth_per_unit"] == pytest.approx(MIB, rel=0.10)
    assert rss["placed_within"] and abs(rss["placed_gap_per_unit"]) < 0.10 * MIB
    # the estimator it replaces: each kind on its own, the median of the replicates
    one_by_one = []
    for run in runs:
        kind_rows = run[(run["level"] == "kind") & (run["unit"] > 2)]
        one_by_one.append(sum(theilslopes(g["rss_bytes"].to_numpy(float), g["unit"].to_numpy(float))[0]
                              for _, g in kind_rows.groupby("kind") if g["rss_bytes"].nunique() > 1))
    assert abs(pd.Series(one_by_one).median() - at_readings) > 0.10 * at_readings  # 0.14 and 0.56 of it seen


def test_the_kinds_split_the_verdicts_pooled_slope_exactly_whatever_the_shape():
    """Random series of three kinds in three replicates of different lengths, memory that
    falls included: the total is the verdicts' pooled slope, and the kinds add up to it."""
    import numpy as np

    from leaklab.model.intervals import pooled_slope

    rng = np.random.default_rng(7)
    for _ in range(50):
        series = []
        for n in rng.integers(3, 12, size=3):
            x = np.sort(rng.choice(40, size=n, replace=False)).astype(float)
            series.append((x, rng.integers(-5, 6, size=(n, 3)).cumsum(axis=0).astype(float) * MIB))
        total, split = placement.split_slope(series)
        assert total == pytest.approx(pooled_slope([(x, p.sum(axis=1)) for x, p in series]).slope)
        assert split.sum() == pytest.approx(total, abs=1e-6)
