"""Go heap sites from pprof: the project's go_map writes heap profiles at its unit marks,
and a Go service of the user's is read through its net/http/pprof endpoint; both give
growth sites in the top_sites schema the malloc profilers share."""

import shutil
import socket
import subprocess

import pandas as pd
import pytest
from leaklab import experiments
from leaklab.measure import config, runner
from leaklab.process import build
from leaklab.profilers import pprof
from leaklab.profilers.stacks import SITE_COLUMNS
from leaklab.measure.run_spec import RunSpec

pytestmark = pytest.mark.slow  # real Go builds and runs

MIB = 2**20


def measure(experiment: str, variant: str, outdir, params: dict | None = None, **how) -> dict:
    """One run through the runner, described as the pipeline describes it (``RunSpec``)."""
    return runner.run(RunSpec(experiments.get(experiment), variant, outdir, params or {}, **how))


@pytest.fixture(scope="module")
def go_map(tmp_path_factory, root):
    out = tmp_path_factory.mktemp("build")
    exe = out / "go_map" / "go_map"
    if not build.build("go_map", root / "native", exe, out / "build.log"):
        pytest.fail((out / "build.log").read_text()[-2000:])
    return exe


def test_go_maps_kept_buckets_are_attributed_to_the_map_assignment(go_map, root, tmp_path):
    """runtime/pprof hides the runtime's frames (mapassign, hashGrow, makeBucketArray): the
    site is the line of main.fill that assigns into the map."""
    meta = measure("go_map", "kept", tmp_path, profiler="pprof", timeout_s=120, interval_s=0.02,
                   params={"binary": str(go_map), "entries": 100_000, "cycles": 6})
    assert meta["status"] == "ok" and meta["profile_status"] == "ok", meta
    sites = pd.read_parquet(tmp_path / "top_sites.parquet")
    assert tuple(sites.columns) == SITE_COLUMNS
    growth = sites[sites["kind"] == "growth"].iloc[0]
    assert growth["frame"].startswith("main.fill (main.go:") and growth["native_caller"] == "main.fill"
    line = int(growth["frame"].rsplit(":", 1)[1].rstrip(")"))
    assert (root / "native" / "go_map" / "main.go").read_text().splitlines()[line - 1].strip() == "m[i] = value"
    timeline = pd.read_parquet(tmp_path / "heap_timeline.parquet")
    assert (timeline["source"] == "pprof").all() and len(timeline) == 7  # units 0..6
    assert timeline["heap_bytes"].iloc[-1] > timeline["heap_bytes"].iloc[1]


def test_a_go_service_is_read_through_its_pprof_url(root, tmp_path):
    if not shutil.which("go"):
        pytest.skip("no Go toolchain")
    exe = tmp_path / "pprof_leak"
    subprocess.run(["go", "build", "-o", str(exe), "."], cwd=root / "tests" / "data" / "pprof_leak", check=True,
                   capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/debug/pprof/heap?gc=1"
    entry = {"command": f"{exe} -addr 127.0.0.1:{port} -steps 12 -bytes {MIB}", "variants": ["leak"],
             "unit": "step", "unit_pattern": "step (\\d+)", "pprof_url": url, "profilers": ["plain", "pprof"]}
    cfg = {"experiments": {"service": entry}}
    experiments.configure(cfg)
    try:
        meta = measure("service", "leak", tmp_path / "run", profiler="pprof", timeout_s=120,
                       profiler_settings=config.profiler_settings(cfg, "service", "pprof"))
    finally:
        experiments.configure({})
    assert meta["status"] == "ok" and meta["profile_status"] == "ok", meta
    assert len(pprof.find_profiles(tmp_path / "run")) >= 4  # one per unit mark, fewer on a loaded machine
    sites = pd.read_parquet(tmp_path / "run" / "top_sites.parquet")
    growth = sites[sites["kind"] == "growth"].iloc[0]
    assert growth["frame"].startswith("main.remember (main.go:")
    assert growth["bytes"] > 2 * MIB  # about 1 MiB a step between the first and last profile


def test_a_corrupt_profile_is_a_parse_error(tmp_path):
    (tmp_path / pprof.DIR).mkdir()
    (tmp_path / pprof.DIR / "heap.1.pb.gz").write_bytes(b"\x1f\x8bnot really")
    with pytest.raises(pprof.ParseError):
        pprof.collect(tmp_path)
