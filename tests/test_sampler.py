"""The /proc sampler against real processes with known memory and fds."""

import os
import signal
import subprocess
import sys
import time

import pytest

from leaklab.process import sampler

ALLOCATE = """
import os, sys, time
block = bytearray(64 * 2**20)          # 64 MiB, touched so it is resident
for i in range(0, len(block), 4096):
    block[i] = 1
path = sys.argv[1]
fds = [os.open(path + str(i), os.O_CREAT | os.O_RDWR) for i in range(5)]
for i in range(3):
    os.unlink(path + str(i))           # three deleted, still open
child = __import__("subprocess").Popen([sys.executable, "-c", "import time; time.sleep(30)"])
print("ready", flush=True)
time.sleep(30)
"""


@pytest.fixture
def allocating_process(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", ALLOCATE, str(tmp_path / "f")], stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True)
    # (pytest's capture files are deleted temp files: keep them out of the fd census)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    yield proc
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_sample_sees_resident_memory_fds_and_children(allocating_process):
    row = sampler.sample(allocating_process.pid, t=1.0)
    assert row["pids"] == 2  # the process and its child
    assert 64 * 2**20 < row["rss_bytes"] < 64 * 2**20 + 60 * 2**20
    assert row["uss_bytes"] > 64 * 2**20
    assert 0 < row["pss_bytes"] <= row["rss_bytes"]
    assert row["vmhwm_bytes"] >= 64 * 2**20
    assert row["deleted_fds"] == 3
    assert row["fds"] >= 5
    assert row["threads"] >= 2


def test_sample_of_a_gone_process_is_none():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert sampler.sample(proc.pid, t=0.0) is None
