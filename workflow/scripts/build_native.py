"""Snakemake entry point: compile one native reproduction (see leaklab.process.build)."""

import sys
from pathlib import Path

from leaklab.process.containment import die_with_parent

die_with_parent()  # first: a pipeline killed outright takes the build down with it
sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from leaklab.process.build import build  # noqa: E402

versions = build(snakemake.wildcards.program, Path(snakemake.params.native_root),  # noqa: F821
                 Path(snakemake.output.binary), Path(snakemake.log[0]),  # noqa: F821
                 mem_cap_bytes=snakemake.params.mem_cap_mb * 2**20)  # noqa: F821
print(f"built {snakemake.output.binary}: {versions}", file=sys.stderr)  # noqa: F821
