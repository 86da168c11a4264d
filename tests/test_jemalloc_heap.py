"""A heap metric for a program linked with jemalloc, unchanged: tests/data/places_leak.c
built with -ljemalloc allocates through jemalloc, never glibc's malloc; leaklab reads
jemalloc's own heap profile dumps at its unit marks and judges malloc_in_use_bytes."""

import json
import shutil
import subprocess

import places_runs
import pytest
from leaklab.measure.config_check import ConfigError, _check_heap_metric
from leaklab.process import allocator_heap, jemalloc_heap

pytestmark = pytest.mark.slow  # real C builds and runs

MIB = 2**20
STEPS = 30
STEP_BYTES = 4 * MIB
PLANTED = 1024 * 4096 + 10240  # per step: 1024 blocks of 4000 B (jemalloc's 4 KiB class) and their pointer array


@pytest.fixture(scope="module")
def places_jemalloc(root, tmp_path_factory) -> str:
    if not shutil.which("cc"):
        pytest.skip("no C compiler")
    exe = tmp_path_factory.mktemp("bin") / "places_jemalloc"
    built = subprocess.run(["cc", "-O0", "-o", str(exe), str(root / "tests" / "data" / "places_leak.c"), "-ljemalloc"],
                           capture_output=True, text=True, check=False)
    if built.returncode != 0:
        pytest.skip(f"no libjemalloc to link (Debian: libjemalloc-dev): {built.stderr[-200:]}")
    return str(exe)


def test_a_program_linked_with_jemalloc_is_found_by_its_needed_libraries(places_jemalloc, root, tmp_path):
    assert "libjemalloc.so.2" in jemalloc_heap.needed_libraries(places_jemalloc)
    assert jemalloc_heap.linked(places_jemalloc) and not jemalloc_heap.linked(shutil.which("sh"))
    plain = tmp_path / "places_glibc"
    subprocess.run(["cc", "-O0", "-o", str(plain), str(root / "tests" / "data" / "places_leak.c")], check=True)
    assert not jemalloc_heap.linked(str(plain)) and "libc.so.6" in jemalloc_heap.needed_libraries(plain)
    assert allocator_heap.applies(places_jemalloc) == (True, "")
    _check_heap_metric({"command": f"{places_jemalloc} malloc 3 1024"}, "experiments.places.verdict")  # no error
    with pytest.raises(ConfigError, match=r"malloc_in_use_bytes: no heap metric .*shell.*libjemalloc"):
        _check_heap_metric({"command": "sh -c 'true'"}, "experiments.places.verdict")


def test_a_jemalloc_programs_heap_is_read_from_its_own_dumps_and_judged(places_jemalloc, tmp_path):
    """No change to the program: MALLOC_CONF switches on jemalloc's heap profiler and its
    interval dumps, the newest is read at each unit mark, and the malloc_in_use_bytes
    threshold decides the verdict; its growth is the planted one within 10 %."""
    modes = ("malloc", "none")
    got, metas = places_runs.run_modes(places_jemalloc, modes, tmp_path, steps=STEPS, step_bytes=STEP_BYTES,
                                       verdict={"malloc_in_use_bytes": {"leak_per_unit": 256 * 1024,
                                                                        "retained": 16 * MIB}})
    for mode in modes:
        meta, rundir = metas[mode, 1], tmp_path / "places" / mode / "plain" / "rep1"
        assert meta["status"] == "ok", meta
        assert "jemalloc's own heap profile dumps" in meta["heap_metric"]["source"]
        assert "libmemusage" not in meta["heap_metric"]["source"]
        assert len(list((rundir / jemalloc_heap.DIR).glob("*.heap"))) == 1  # older dumps deleted as read
    growth = got["growth"].set_index(["variant", "metric"])
    leak = growth.loc[("malloc", "malloc_in_use_bytes")]
    assert leak["verdict"] == "leak", leak["verdict_reason"]
    assert leak["growth_per_unit"] == pytest.approx(PLANTED, rel=0.10)
    assert growth.loc[("none", "malloc_in_use_bytes"), "verdict"] != "leak"
    meta = json.loads((tmp_path / "places" / "malloc" / "plain" / "rep1" / "meta.json").read_text())
    assert "lg_prof_interval" in meta["heap_metric"]["source"]


def test_a_dump_being_written_is_not_read_and_the_scaling_is_jeprofs(tmp_path):
    """A dump is read only once jemalloc has written its stacks (MAPPED_LIBRARIES follows
    them); each stack's samples are scaled back as jeprof does."""
    stacks = "heap_v2/16384\n  t*: 3: 12288 [0: 0]\n@ 0x1 0x2\n  t*: 3: 12288 [0: 0]\n  t0: 3: 12288 [0: 0]\n"
    assert jemalloc_heap.in_use_bytes(stacks) is None
    expected = 12288 / (1 - __import__("math").exp(-4096 / 16384))
    assert jemalloc_heap.in_use_bytes(stacks + "\nMAPPED_LIBRARIES:\n") == int(expected)
    assert jemalloc_heap.in_use_bytes("heap_v2/x\n\nMAPPED_LIBRARIES:\n") is None
