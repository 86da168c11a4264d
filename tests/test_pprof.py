"""Go heap sites from pprof: the project's go_map writes heap profiles at its unit marks,
and a Go service of the user's is read through its net/http/pprof endpoint; both give
growth sites in the top_sites schema the malloc profilers share."""

import re
import shutil
import socket
import subprocess

import pandas as pd
import pytest
from leaklab.measure import config
from leaklab.process import build
from leaklab.profilers import pprof
from leaklab.profilers.stacks import SITE_COLUMNS
from measuring import measure

pytestmark = pytest.mark.slow  # real Go builds and runs

MIB = 2**20


@pytest.fixture(scope="module")
def go_map(tmp_path_factory, root):
    out = tmp_path_factory.mktemp("build")
    exe = out / "go_map" / "go_map"
    if not build.build("go_map", root / "native", exe, out / "build.log"):
        pytest.fail((out / "build.log").read_text()[-2000:])
    return exe


def test_go_maps_kept_buckets_are_attributed_to_the_runtimes_map_code_called_from_main(go_map, root, tmp_path):
    """runtime/pprof hides the runtime's frames (mapassign, hashGrow, makeBucketArray);
    the text form native/unitline writes beside it keeps them: the growing site is the
    runtime's map code, and the program's frame that called it (native_caller) is main.fill."""
    meta = measure("go_map", "kept", tmp_path, profiler="pprof", timeout_s=120, interval_s=0.02,
                   params={"binary": str(go_map), "entries": 100_000, "cycles": 6})
    assert meta["status"] == "ok" and meta["profile_status"] == "ok", meta
    sites = pd.read_parquet(tmp_path / "top_sites.parquet")
    assert tuple(sites.columns) == SITE_COLUMNS
    growth = sites[sites["kind"] == "growth"].iloc[0]
    function = growth["frame"].split(" (", 1)[0]
    assert function in MAP_CODE and re.search(r" \(map(_fast64)?\.go:\d+\)$", growth["frame"]), growth["frame"]
    assert growth["native_caller"] == "main.fill"
    frames = growth["stack"].split(";")
    assert frames[0] == function and frames[frames.index("main.fill") - 1].startswith("runtime.mapassign")
    in_use = sites[sites["kind"] == "in_use"]
    assert in_use["frame"].str.startswith("runtime.makeBucketArray (map.go:").any()  # the buckets themselves
    timeline = pd.read_parquet(tmp_path / "heap_timeline.parquet")
    assert (timeline["source"] == "pprof").all() and len(timeline) == 7  # units 0..6
    assert timeline["heap_bytes"].iloc[-1] > timeline["heap_bytes"].iloc[1]
    # runtime/pprof's own profile, kept for go tool pprof, names no runtime frame: the same bytes
    proto = pprof.parse((tmp_path / pprof.DIR / "heap.6.pb.gz").read_bytes())[0]
    assert not any(frame.split("@")[0] in MAP_CODE for stack in proto for frame in stack)
    assert sum(proto.values()) == sum(pprof.read_profile(tmp_path / pprof.DIR / "heap.6.txt").values())


MAP_CODE = {"runtime.makeBucketArray", "runtime.hashGrow", "runtime.(*hmap).newoverflow", "runtime.mapassign",
            "runtime.mapassign_fast64", "runtime.makemap", "runtime.makemap_small"}


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
    entry = {"command": f"{exe} -addr 127.0.0.1:{port} -steps 12 -bytes {MIB} -rate 4096", "variants": ["leak"],
             "unit": "step", "unit_pattern": "step (\\d+)", "pprof_url": url, "profilers": ["plain", "pprof"]}
    cfg = {"experiments": {"service": entry}}
    meta = measure("service", "leak", tmp_path / "run", config=cfg, profiler="pprof", timeout_s=120,
                   profiler_settings=config.profiler_settings(cfg, "service", "pprof"))
    assert meta["status"] == "ok" and meta["profile_status"] == "ok", meta
    assert len(pprof.find_profiles(tmp_path / "run")) >= 4  # one per unit mark, fewer on a loaded machine
    sites = pd.read_parquet(tmp_path / "run" / "top_sites.parquet")
    growth = sites[sites["kind"] == "growth"].iloc[0]
    assert growth["frame"].startswith("main.remember (main.go:") and growth["native_caller"] == "main.remember"
    # the map's buckets: the runtime frames the served profile hides, named through /debug/pprof/symbol
    buckets = sites[(sites["kind"] == "growth") & sites["frame"].isin(MAP_CODE)]
    assert len(buckets) and (buckets["native_caller"] == "main.remember").all(), sites
    assert growth["bytes"] > 2 * MIB  # about 1 MiB a step between the first and last profile


def test_a_corrupt_profile_is_a_parse_error(tmp_path):
    (tmp_path / pprof.DIR).mkdir()
    (tmp_path / pprof.DIR / "heap.1.pb.gz").write_bytes(b"\x1f\x8bnot really")
    with pytest.raises(pprof.ParseError):
        pprof.collect(tmp_path)


def test_a_text_profile_that_is_not_one_is_a_parse_error(tmp_path):
    (tmp_path / pprof.DIR).mkdir()
    (tmp_path / pprof.DIR / "heap.1.txt").write_text("goroutine profile: total 3\n")
    with pytest.raises(pprof.ParseError, match="header"):
        pprof.collect(tmp_path)


def test_an_endpoint_that_answers_no_heap_profile_is_noted_not_raised(tmp_path):
    """Whatever the service answers is untrusted: an answer that is not a heap profile's
    text form leaves a note in errors.txt and no text form to read."""
    import http.server
    import threading

    class NotPprof(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotPprof)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (tmp_path / pprof.DIR).mkdir()
        pprof.at_unit(3, tmp_path, {"url": f"http://127.0.0.1:{server.server_port}/debug/pprof/heap"})
    finally:
        server.shutdown()
    assert "unit 3:" in (tmp_path / pprof.DIR / "errors.txt").read_text()
    assert not (tmp_path / pprof.DIR / "heap.3.txt").exists()
