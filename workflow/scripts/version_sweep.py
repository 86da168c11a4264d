"""Snakemake entry point: the version sweep table and figure."""

import sys
from collections import defaultdict
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")

from leaklab.report import sweep_plots
from leaklab.tables import sweep

by_version = defaultdict(list)
for meta in snakemake.input.meta:
    run = Path(meta).parent
    version = run.parts[-6].split("-", 1)[1]  # results/sweep/<package>-<version>/runs/...
    by_version[version].append(run)
table = sweep.table(dict(by_version), snakemake.params.analysis)
table.to_csv(snakemake.output.table, index=False)
sweep_plots.version_sweep(table, snakemake.output.figure)
