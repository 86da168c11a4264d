"""Snakemake entry point: the cross-language figure."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from leaklab.report import plots  # noqa: E402
from leaklab.tables.tables import read_csv_table  # noqa: E402

plots.cross_language(read_csv_table(snakemake.input.table), snakemake.output.png)  # noqa: F821
