"""Snakemake entry point: the profiler overhead figure."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from leaklab.report import profile_plots  # noqa: E402
from leaklab.tables.tables import read_csv_table  # noqa: E402

profile_plots.profiler_overhead(read_csv_table(snakemake.input.overhead), snakemake.output.png)  # noqa: F821
