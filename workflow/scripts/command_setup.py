"""Snakemake entry point: a command experiment's setup step, contained (leaklab.process.contained);
its outcome recorded in setup.json, never raised (see the command_setup rule)."""

import json
import sys
from pathlib import Path

from leaklab.process.containment import die_with_parent

die_with_parent()  # first: a pipeline killed outright takes the step down with it
open(snakemake.log[0], "w").close()  # noqa: F821

from leaklab.process import contained  # noqa: E402
limits = snakemake.params.limits  # noqa: F821
Path(snakemake.output[0]).parent.mkdir(parents=True, exist_ok=True)  # noqa: F821  ({setup_dir})
outcome = contained.run(snakemake.params.command, Path(snakemake.log[0]),  # noqa: F821
                        limits["timeout_s"], limits["mem_cap_mb"] * 2**20)
Path(snakemake.output[0]).write_text(json.dumps(  # noqa: F821
    {**outcome, "command": snakemake.params.command}, indent=2) + "\n")  # noqa: F821
with open(snakemake.log[0], "a") as log:  # noqa: F821
    print(f"setup {snakemake.wildcards.experiment}: {outcome['status']} {outcome['reason']}".rstrip(), file=log)  # noqa: F821
if outcome["status"] != "ok":
    print(f"leaklab: setup of {snakemake.wildcards.experiment} {outcome['status']} ({outcome['reason']}): its runs "  # noqa: F821
          f"are recorded as setup_failed; see {snakemake.log[0]}", file=sys.stderr)  # noqa: F821
