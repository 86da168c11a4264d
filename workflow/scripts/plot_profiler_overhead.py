"""Snakemake entry point: the profiler overhead figure."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from leaklab import experiments
from leaklab.report import profile_plots
from leaklab.tables.tables import read_csv_table

profile_plots.profiler_overhead(read_csv_table(snakemake.input.overhead), snakemake.output.png,
                                specs=experiments.specs(snakemake.params.specs))
