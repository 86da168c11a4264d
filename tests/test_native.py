"""The Go and C++ reproductions: built for real with Debian's toolchains, run through
the unit-line protocol by the runner at small sizes, checked against their physics."""

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from leaklab.measure import config, config_check
from leaklab.model import growth
from leaklab.process import build
from measuring import measure

pytestmark = pytest.mark.slow  # real compilers, real runs

MERGED_BYTES = 10 * 64  # the conftest fixture: 10 operands of 64 B per key
FIXTURE_KEYS = 2000
MAP_BUCKET_BYTES = 8 + 8 * 8 + 8 * 128 + 8  # tophash, 8 int keys, 8 [128]byte values, overflow pointer


@pytest.fixture(scope="module")
def binaries(tmp_path_factory, root):
    out = tmp_path_factory.mktemp("build")
    log = out / "build.log"
    return {program: out / program / program for program in build.PROGRAMS
            if build.build(program, root / "native", out / program / program, log)}


def run(binaries, tmp_path, experiment, variant, **params):
    meta = measure(experiment, variant, tmp_path / variant, params={**params, "binary": str(binaries[experiment])},
                   interval_s=0.02, timeout_s=120)
    assert meta["status"] == "ok", meta["log_tail"]
    series = growth.unit_series(pd.read_parquet(tmp_path / variant / "samples.parquet"),
                                pd.read_parquet(tmp_path / variant / "marks.parquet"))
    return meta, series.set_index("unit")


def per_unit(series: pd.Series) -> float:
    """Mean growth per unit after the first unit (the first fills caches)."""
    return float((series.iloc[-1] - series.iloc[1]) / (len(series) - 2))


def test_builds_record_their_toolchains(binaries):
    for program, binary in binaries.items():
        versions = json.loads((binary.parent / build.VERSIONS_NAME).read_text())
        assert os.access(binary, os.X_OK)
        if build.PROGRAMS[program] == "go":
            assert versions["go"].startswith("go version go1.")
        else:
            assert versions["g++"].startswith("g++")
    assert json.loads((binaries["go_merge"].parent / build.VERSIONS_NAME).read_text())["rocksdb_headers"].startswith("7.")


def test_go_merge_leaks_every_merged_value_only_when_delete_value_is_empty(binaries, rocksdb_fixture, tmp_path):
    growth = {}
    for variant in ("leaky-real", "fixed-real", "leaky-dummy"):
        meta, units = run(binaries, tmp_path, "go_merge", variant, fixture=str(rocksdb_fixture), passes=6)
        assert list(units.index) == list(range(7))  # unit 0 (the database open) and six passes
        assert (units.loc[1:, "keys_read"] == FIXTURE_KEYS).all()
        growth[variant] = per_unit(units["malloc_in_use_bytes"])
        assert meta["versions"]["go"].startswith("go version")
    expected = FIXTURE_KEYS * MERGED_BYTES
    assert (units.loc[1:, "merged_bytes"] == 0).all()  # dummy: an empty slice is never malloc'd
    # keys x merged size per pass, plus glibc's 16-byte chunk header per value
    assert expected <= growth["leaky-real"] <= 1.1 * (expected + 16 * FIXTURE_KEYS)
    assert abs(growth["fixed-real"]) < 0.02 * expected
    assert abs(growth["leaky-dummy"]) < 0.02 * expected


def test_heaptrack_names_the_cgo_merge_path_of_go_merge(binaries, rocksdb_fixture, tmp_path):
    meta = measure("go_merge", "leaky-real", tmp_path / "heaptrack", profiler="heaptrack", interval_s=0.05,
                   timeout_s=120, params={"binary": str(binaries["go_merge"]), "fixture": str(rocksdb_fixture),
                                             "passes": 3})
    assert meta["status"] == "ok" and meta["profile_status"] == "ok", meta
    sites = pd.read_parquet(tmp_path / "heaptrack" / "top_sites.parquet")
    top = sites[sites["kind"] == "leaked"].sort_values("bytes", ascending=False).iloc[0]
    # the original's evidence: the merged values, malloc'd by C.CBytes, under runtime.asmcgocall
    assert "Cfunc__Cmalloc" in top["frame"] and "runtime.asmcgocall" in top["stack"]
    assert top["bytes"] == pytest.approx(3 * FIXTURE_KEYS * MERGED_BYTES, rel=1e-3)  # every merged value, 3 passes
    assert 3 * FIXTURE_KEYS <= top["count"] <= 3 * FIXTURE_KEYS + 4  # (and the few C strings cgo mallocs too)


def test_cpp_merge_is_flat(binaries, rocksdb_fixture, tmp_path):
    for variant in ("real", "dummy"):
        _, units = run(binaries, tmp_path, "cpp_merge", variant, fixture=str(rocksdb_fixture), passes=6)
        assert (units.loc[1:, "value_bytes_read"] == (FIXTURE_KEYS * MERGED_BYTES if variant == "real" else 0)).all()
        assert abs(per_unit(units["malloc_in_use_bytes"])) < 0.02 * FIXTURE_KEYS * MERGED_BYTES


def test_go_map_keeps_its_buckets_until_rebuilt(binaries, tmp_path):
    entries = 100_000  # 2^14 buckets: 100,000 / 2^14 < 6.5 entries per bucket
    heaps, rss = {}, {}
    for variant in ("kept", "rebuilt", "rebuilt_free"):
        _, units = run(binaries, tmp_path, "go_map", variant, entries=entries, cycles=3)
        assert units.loc[0, "go_heap_alloc_bytes"] < 1e6  # before the first fill
        heaps[variant] = units.loc[3, "go_heap_alloc_bytes"]  # after the last empty and a GC
        rss[variant] = units.loc[3, "rss_bytes"]
        assert (units.loc[1:, "filled_heap_alloc_bytes"] > 2**14 * MAP_BUCKET_BYTES).all()
        assert (units.loc[1:, "map_len"] == 0).all()
    assert 2**14 * MAP_BUCKET_BYTES < heaps["kept"] < 2**15 * MAP_BUCKET_BYTES
    assert heaps["rebuilt"] < 1e6 and heaps["rebuilt_free"] < 1e6
    assert rss["rebuilt_free"] < rss["kept"] - 2**14 * MAP_BUCKET_BYTES  # FreeOSMemory hands the pages back


def test_go_fd_holds_one_deleted_fd_per_rotation(binaries, tmp_path):
    _, leak = run(binaries, tmp_path, "go_fd", "leak", rotations=8, interval_s=0.005, payload_bytes=64)
    _, close = run(binaries, tmp_path, "go_fd", "close", rotations=8, interval_s=0.005, payload_bytes=64)
    assert list(leak["deleted_fds"]) == list(range(9))
    # Dolt's test: the next fd number keeps rising (the Go runtime opens its poller's fds once, early)
    assert (leak["next_fd"].diff().iloc[1:] >= 1).all() and leak.loc[8, "next_fd"] - leak.loc[1, "next_fd"] >= 7
    assert (close["deleted_fds"] == 0).all()
    assert close["next_fd"].max() - close["next_fd"].min() <= 4


def test_bad_arguments_and_config_are_refused(binaries, root):
    done = subprocess.run([binaries["go_merge"], "-variant", "leaky-rael", "-db", "x"], capture_output=True, text=True)
    assert done.returncode == 2 and "usage: go_merge -variant {leaky-dummy,leaky-real" in done.stderr
    cfg = {"verdict": {"metrics": {}}, "experiments": {"go_merge": {"variants": ["leaky-rael"]}}}
    with pytest.raises(config.ConfigError, match="experiments.go_merge.variants: unknown variant 'leaky-rael'; allowed: fixed-real"):
        config_check.check(cfg)
    cfg = {"verdict": {"metrics": {}}, "experiments": {"go_map": {"variants": ["kept"], "params": {"entires": 10}}}}
    with pytest.raises(config.ConfigError, match="experiments.go_map.params.entires: unknown parameter; allowed: cycles, entries"):
        config_check.check(cfg)


@pytest.mark.e2e
def test_the_workflow_builds_compares_languages_and_rebuilds_when_a_source_changes(root, tmp_path):
    fds = {"variants": ["close", "leak"], "warmup_units": 2, "params": {"rotations": 12, "interval_s": 0.01}}
    settings = {"replicates": 1, "sampler": {"interval_s": 0.02}, "limits": {"timeout_s": 60, "mem_cap_mb": 1024},
                "verdict": {"metrics": {"deleted_fds": {"leak_per_unit": 0.5, "retained": 16}}},
                "experiments": {"fd_leak": fds, "go_fd": fds}}
    (tmp_path / "native.yaml").write_text(yaml.safe_dump(settings))
    targets = ["results/tables/cross_language.csv", "results/figures/cross_language.png"]
    snakemake = [sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"), "--directory", str(tmp_path),
                 "--configfile", str(tmp_path / "native.yaml"), "--cores", "2"]
    done = subprocess.run([*snakemake, "results/build/go_fd/go_fd", *targets], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "results/build/go_fd/versions.json").exists()
    assert (tmp_path / "results/logs/build_go_fd.log").exists()
    meta = json.loads((tmp_path / "results/runs/go_fd/leak/plain/rep1/meta.json").read_text())
    assert meta["status"] == "ok" and meta["n_units"] == 12
    assert meta["versions"]["go"].startswith("go version go1.")
    assert meta["command"][0] == str(tmp_path / "results/build/go_fd/go_fd")
    side = pd.read_csv(tmp_path / targets[0]).set_index(["language", "variant"])
    assert set(side["mechanism"]) == {"handles to deleted LOCK files"}
    for language in ("Python", "Go"):
        assert side.loc[(language, "leak"), "verdict"] == "leak"
        assert side.loc[(language, "leak"), "growth_per_unit"] == pytest.approx(1.0)
        assert side.loc[(language, "close"), "verdict"] == "stable"
    assert (tmp_path / targets[1]).stat().st_size > 10_000
    # a program older than its sources is rebuilt, and its runs redone
    old = time.time() - 10 * 365 * 86400
    os.utime(tmp_path / "results/build/go_fd/go_fd", (old, old))
    dry = subprocess.run([*snakemake, "-n", *targets], capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "build_native" in dry.stdout and "run_experiment" in dry.stdout


def test_a_go_program_waits_at_its_unit_marks_for_the_reading_of_its_mappings(binaries, tmp_path):
    """go_map fills its map again the moment a cycle's line is written, tens of MB in
    milliseconds; the unit-line writer (native/unitline) waits for the runner's reading,
    so no reading of the mappings holds the next fill.  Go's runtime goes on while the
    program waits (its scavenger and GC workers have threads of their own), so a reading
    may be lower than the line's RSS, never higher: once in the full suite of 2026-12-06
    09:18 a reading of unit 1 held 90.6 MB against the line's 162.0 MB, the others equal.
    Most readings still hold exactly what the line held."""
    for variant in ("kept", "rebuilt_free"):
        meta, units = run(binaries, tmp_path, "go_map", variant, entries=300_000, cycles=6)
        assert meta["mappings_readings"] >= 2, meta  # paced: fewer when the machine is loaded
        readings = pd.read_parquet(tmp_path / variant / "mappings.parquet")
        at_reading = readings[readings["level"] == "process"].set_index("unit")["rss_bytes"]
        own = units.loc[at_reading.index, "rss_bytes"]
        shown = pd.DataFrame({"read": at_reading, "own": own})
        assert (at_reading - own < 2**20).all(), shown  # never the next fill
        assert (abs(at_reading - own) < 2**20).mean() >= 0.5, shown


def _cpp_merge_on_a_sync_pipe(binaries, fixture, tmp_path, pace: str):
    """cpp_merge started as the runner starts it, the sync pipe's other ends in the test's
    hands: the process, the end its requests arrive on, the end answers go into, and a
    function counting its unit lines."""
    ready_r, ready_w = os.pipe()
    release_r, release_w = os.pipe()
    units_file = tmp_path / f"units-{pace}.txt"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LEAKLAB_")}, "LEAKLAB_UNITS": str(units_file),
           "LEAKLAB_SYNC_FDS": f"{ready_w},{release_r}", "LEAKLAB_UNIT_READINGS": pace}
    proc = subprocess.Popen([str(binaries["cpp_merge"]), "real", str(fixture), "3"], env=env,
                            pass_fds=(ready_w, release_r))
    os.close(ready_w)
    os.close(release_r)
    return proc, ready_r, release_w, lambda: len(units_file.read_text().splitlines()) if units_file.exists() else 0


def _request(ready_r: int, timeout: float = 30) -> bytes:
    import select

    assert select.select([ready_r], [], [], timeout)[0], "no request"
    return os.read(ready_r, 64)


def test_the_cpp_program_waits_at_its_unit_marks_for_the_reading_of_its_mappings(binaries, rocksdb_fixture, tmp_path):
    """cpp_merge speaks the sync pipe as marks.py and unitline do: at a due unit mark it
    writes ``u<unit>`` and goes on (its next line) only at the answer ``u``; a mark nobody
    answers is held at most 2 s and the pace then counts the wait (10 x 2 s: no more marks
    ask); at the end it asks ``x``, and a late ``u`` does not end that wait.  Through the
    runner every mapping reading is one of its unit marks and sees the line's own RSS;
    run by hand (no pipe) it does not wait at all."""
    proc, ready_r, release_w, lines = _cpp_merge_on_a_sync_pipe(binaries, rocksdb_fixture, tmp_path, "0,0.001")
    try:
        assert _request(ready_r) == b"u0\n"
        time.sleep(0.5)
        assert lines() == 1  # held at its mark: no pass while unanswered
        for unit in (1, 2, 3):
            os.write(release_w, b"u")
            assert _request(ready_r) == f"u{unit}\n".encode() and lines() == unit + 1
        os.write(release_w, b"u")
        assert _request(ready_r) == b"x"
        os.write(release_w, b"x")
        assert proc.wait(timeout=30) == 0 and lines() == 4
    finally:
        proc.kill()
        os.close(ready_r)
        os.close(release_w)
    proc, ready_r, release_w, lines = _cpp_merge_on_a_sync_pipe(binaries, rocksdb_fixture, tmp_path, "0.05,10")
    try:
        start = time.monotonic()
        assert _request(ready_r) == b"u0\n"  # not answered
        assert _request(ready_r) == b"x" and 1.8 < time.monotonic() - start < 10  # units 1-3 did not ask
        os.write(release_w, b"u")  # the late answer to unit 0
        time.sleep(0.5)
        assert proc.poll() is None and lines() == 4  # still waiting for its own answer
        os.write(release_w, b"x")
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        os.close(ready_r)
        os.close(release_w)
    meta, units = run(binaries, tmp_path, "cpp_merge", "real", fixture=str(rocksdb_fixture), passes=24)
    readings = pd.read_parquet(tmp_path / "real" / "mappings.parquet")
    at_reading = readings[readings["level"] == "process"].set_index("unit")["rss_bytes"]
    assert meta["mappings_readings"] >= 3 and at_reading.index.is_unique, meta
    assert set(at_reading.index) <= set(units.index)
    own = units.loc[at_reading.index, "rss_bytes"]
    assert (abs(at_reading - own) < 2**20).all(), pd.DataFrame({"read": at_reading, "own": own})
    by_hand = subprocess.run([str(binaries["cpp_merge"]), "real", str(rocksdb_fixture), "3"],
                             env={k: v for k, v in os.environ.items() if not k.startswith("LEAKLAB_")},
                             capture_output=True, text=True, timeout=60, check=False)
    assert by_hand.returncode == 0 and by_hand.stdout.count("\n") == 4, by_hand.stderr
