"""Snakemake entry point: build the rocksdb_merge fixture database once, contained under
the measurements' memory cap and time limit (leaklab.process.contained).  A build that does not
end ok leaves only FAILED.json in the fixture's directory: the runs that read it are
recorded as fixture_failed, the other experiments go on, and the next pipeline run
builds it again (leaklab.process.outcome)."""

import json
import shutil
import sys
from pathlib import Path

from leaklab.process.containment import die_with_parent  # no slow import before these two
from leaklab.process.run_signals import hold

die_with_parent()  # a pipeline killed from here on takes this job down with it
hold()  # every thread started from here on leaves a program's signals to the runner

open(snakemake.log[0], "w").close()

from leaklab.process import contained
from leaklab.experiments.rocksdb_merge import fixture_command
from leaklab.process.outcome import FAILED_FIXTURE

p, limits = snakemake.params.settings, snakemake.params.limits
output = Path(snakemake.output[0])
cmd = fixture_command(str(output), int(snakemake.wildcards.n_keys), int(p["operands"]),
                      int(p["operand_bytes"]), int(p["seed"]))
outcome = contained.run(cmd, Path(snakemake.log[0]), limits["timeout_s"], limits["mem_cap_mb"] * 2**20)
with open(snakemake.log[0], "a") as log:
    print(f"fixture: {outcome}", file=log)
if outcome["status"] != "ok":
    shutil.rmtree(output, ignore_errors=True)  # a partial database passes for none
    output.mkdir(parents=True)
    (output / FAILED_FIXTURE).write_text(json.dumps({**outcome, "limits": limits}, indent=2) + "\n")
    print(f"leaklab: fixture build {outcome['status']} ({outcome['reason']}); see {snakemake.log[0]}",
          file=sys.stderr)
