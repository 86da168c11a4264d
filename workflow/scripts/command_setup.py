"""Snakemake entry point: a command experiment's setup step, contained (leaklab.process.contained);
its outcome recorded in setup.json, never raised (see the command_setup rule)."""

import json
import sys
from pathlib import Path

from leaklab.process.containment import die_with_parent

die_with_parent()  # first: a pipeline killed outright takes the step down with it
open(snakemake.log[0], "w").close()

from leaklab.process import contained
limits = snakemake.params.limits
Path(snakemake.output[0]).parent.mkdir(parents=True, exist_ok=True)
outcome = contained.run(snakemake.params.command, Path(snakemake.log[0]),
                        limits["timeout_s"], limits["mem_cap_mb"] * 2**20)
Path(snakemake.output[0]).write_text(json.dumps(
    {**outcome, "command": snakemake.params.command}, indent=2) + "\n")
with open(snakemake.log[0], "a") as log:
    print(f"setup {snakemake.wildcards.experiment}: {outcome['status']} {outcome['reason']}".rstrip(), file=log)
if outcome["status"] != "ok":
    print(f"leaklab: setup of {snakemake.wildcards.experiment} {outcome['status']} ({outcome['reason']}): its runs "
          f"are recorded as setup_failed; see {snakemake.log[0]}", file=sys.stderr)
