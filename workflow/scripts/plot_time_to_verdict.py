"""Snakemake entry point: the time-to-verdict figure."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from leaklab.report import timeline_plots
from leaklab.tables.tables import read_csv_table

timeline_plots.time_to_verdict(read_csv_table(snakemake.input.table), snakemake.output.png)
