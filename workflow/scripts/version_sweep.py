"""Snakemake entry point: the version sweep table and figure."""

import sys
from collections import defaultdict
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from leaklab.report import plots  # noqa: E402
from leaklab.tables import sweep  # noqa: E402

by_version = defaultdict(list)
for meta in snakemake.input.meta:  # noqa: F821
    run = Path(meta).parent
    version = run.parts[-6].split("-", 1)[1]  # results/sweep/<package>-<version>/runs/...
    by_version[version].append(run)
table = sweep.table(dict(by_version), snakemake.params.analysis)  # noqa: F821
table.to_csv(snakemake.output.table, index=False)  # noqa: F821
plots.version_sweep(table, snakemake.output.figure)  # noqa: F821
