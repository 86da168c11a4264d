"""Snakemake entry point: build the tidy tables from every run directory, contained like a
measured program (leaklab.process.contained: time limit, memory cap, bounded log)."""

import sys
from pathlib import Path

from leaklab.process import contained

params = snakemake.params
contained.script_contained(__real_file__, snakemake.log[0], params.limits["timeout_s"],
                           params.limits["mem_cap_mb"] * 2**20)

from leaklab.tables import tables

run_dirs = [Path(p).parent for p in snakemake.input.meta]
built = tables.build(run_dirs, params.analysis)
tables.write_csv(built, Path(snakemake.output.tables[0]).parent)
tables.write_duckdb(built, Path(snakemake.output.db))
for name, frame in built.items():
    print(f"{name}: {len(frame)} rows", file=sys.stderr)
