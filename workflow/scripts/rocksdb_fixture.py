"""Snakemake entry point: build the rocksdb_merge fixture database once, under the
measurements' memory cap and time limit (see leaklab.runner.run_limited)."""

import sys

from leaklab.containment import die_with_parent  # no slow import before these two
from leaklab.run_signals import hold

die_with_parent()  # a pipeline killed from here on takes this job down with it
hold()  # every thread started from here on leaves a program's signals to the runner

open(snakemake.log[0], "w").close()  # noqa: F821
sys.stderr = open(snakemake.log[0], "a", buffering=1)  # noqa: F821  (the builder appends to it too)

from leaklab import runner  # noqa: E402
from leaklab.experiments.rocksdb_merge import fixture_command  # noqa: E402

p, limits = snakemake.params.settings, snakemake.params.limits  # noqa: F821
cmd = fixture_command(snakemake.output[0], int(snakemake.wildcards.n_keys), int(p["operands"]),  # noqa: F821
                      int(p["operand_bytes"]), int(p["seed"]))
outcome = runner.run_limited(cmd, snakemake.log[0], limits["timeout_s"], limits["mem_cap_mb"] * 2**20)  # noqa: F821
print(f"fixture: {outcome}", file=sys.stderr)
if outcome["status"] != "ok":
    sys.exit(f"fixture build {outcome['status']} (exit {outcome['exit_code']}, peak RSS "
             f"{outcome['peak_rss_bytes'] / 2**20:.0f} MiB, limits {limits}); see {snakemake.log[0]}")  # noqa: F821
