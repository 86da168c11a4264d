"""The benchmark: a smoke run of `make bench`'s overhead part, and its paired arithmetic."""

import math

import numpy as np
import pytest

from leaklab.benchmarks import overhead
from leaklab.commands import bench


@pytest.mark.slow
def test_the_overhead_benchmark_runs_end_to_end(capsys):
    """One tiny real workload, two pairs of blocks at 20 Hz and back to back."""
    bench.main(["overhead", "--pairs", "2", "--quick"])
    out = capsys.readouterr().out
    assert "sampled back to back at" in out and "at 20 Hz, from the back-to-back" in out
    assert "without smaps_rollup" in out
    assert "nan" not in out


def test_samples_are_taken_only_in_the_blocks_switched_on(tmp_path):
    workload = overhead.Workload("dict_shrink", "dict", {"entries": 50_000}, "cycles")
    units, blocks, samples = overhead.run_blocks(workload, 0.0, pairs=3, block_units=3, workdir=tmp_path)
    assert [m["unit"] for m in units] == list(range(1, 1 + 1 + 6 * 3))
    assert all(a != b for a, b in zip(blocks[0::2], blocks[1::2]))  # one on, one off in each pair
    assert all(n > 0 for n, on in zip(samples, blocks) if on)
    assert all(n == 0 for n, on in zip(samples, blocks) if not on)


def test_per_block_costs_leave_out_the_warmup_and_each_guard_unit():
    # unit u ends at cumulative CPU: warm-up unit 1, then 2 blocks of 3 units
    costs = {2: 100.0, 3: 1.0, 4: 1.0, 5: 100.0, 6: 2.0, 7: 2.0}  # guards (2, 5) cost 100
    cumulative = np.cumsum([0.0] + [costs[u] for u in range(2, 8)])
    marks = [{"unit": u, "cpu_s": c} for u, c in zip(range(1, 8), cumulative)]
    assert list(overhead.per_block(marks, [True, False], 3, 1, "cpu_s")) == [1.0, 2.0]


def test_the_paired_estimate_recovers_a_known_ratio_and_its_spread():
    rng = np.random.default_rng(3)
    blocks = overhead.schedule(200, seed=5)
    drift = np.repeat(np.exp(rng.normal(0, 0.3, 200)), 2)  # load changes between pairs, not within
    noise = np.exp(rng.normal(0, 0.01, 400))
    costs = drift * noise * np.where(blocks, 1.05, 1.0)
    estimate = overhead.paired_estimate(costs, blocks)
    assert estimate.low < 0.05 < estimate.high and estimate.high - estimate.low < 0.01
    assert estimate.n_pairs == 200
    one = overhead.paired_estimate(costs[:2], blocks[:2])
    assert math.isinf(one.high)


def test_a_workload_that_fails_is_reported_with_its_output(tmp_path):
    workload = overhead.Workload("fd_leak", "leak", {"payload_bytes": "big"}, "rotations")
    with pytest.raises(RuntimeError, match="fd_leak/leak failed"):
        overhead.run_blocks(workload, 0.05, pairs=1, block_units=2, workdir=tmp_path)


def test_parsing_the_snakefile_imports_neither_pandas_nor_scipy(root):
    """What workflow/rules/common.smk imports and calls at parse time stays light: a dry
    run or a no-op re-run should cost Snakemake's own start-up, not pandas and scipy's."""
    import subprocess
    import sys

    script = ("import sys, yaml\n"
              "import leaklab.measure.config, leaklab.measure.config_check, leaklab.measure.validation\n"
              "import leaklab.tables.sweep, leaklab.tables.table_names\n"
              f"config = yaml.safe_load(open({str(root / 'config.yaml')!r}))\n"
              "leaklab.measure.config_check.check(config); leaklab.measure.config.runs(config)\n"
              "print(sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'scipy', 'numpy', 'matplotlib'}))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
