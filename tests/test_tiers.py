"""The fast tier: `pytest -m "not slow"` leaves out every end-to-end and cluster test."""

import subprocess
import sys

import pytest


def collected(root, *args) -> set[str]:
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args,
                           str(root / "tests")], capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return {line for line in done.stdout.splitlines() if "::" in line}


@pytest.mark.slow
def test_the_fast_tier_leaves_out_every_pipeline_test(root):
    fast = collected(root, "-m", "not slow")
    pipelines = collected(root, "-m", "e2e or slurm")
    assert len(pipelines) > 10 and len(fast) > 50 and not fast & pipelines
    assert "tests/test_tiers.py::test_the_fast_tier_leaves_out_every_pipeline_test" not in fast
