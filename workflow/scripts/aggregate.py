"""Snakemake entry point: build the tidy tables from every run directory."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from leaklab import tables  # noqa: E402

run_dirs = [Path(p).parent for p in snakemake.input.meta]  # noqa: F821
built = tables.build(run_dirs, snakemake.params.analysis)  # noqa: F821
tables.write_csv(built, Path(snakemake.output.tables[0]).parent)  # noqa: F821
tables.write_duckdb(built, Path(snakemake.output.db))  # noqa: F821
for name, frame in built.items():
    print(f"{name}: {len(frame)} rows", file=sys.stderr)
