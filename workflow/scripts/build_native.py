"""Snakemake entry point: compile one native reproduction (see leaklab.process.build)."""

import sys
from pathlib import Path

from leaklab.process.containment import die_with_parent

die_with_parent()  # first: a pipeline killed outright takes the build down with it
sys.stderr = open(snakemake.log[0], "w")

from leaklab.process.build import build

versions = build(snakemake.wildcards.program, Path(snakemake.params.native_root),
                 Path(snakemake.output.binary), Path(snakemake.log[0]),
                 mem_cap_bytes=snakemake.params.mem_cap_mb * 2**20)
print(f"built {snakemake.output.binary}: {versions}", file=sys.stderr)
