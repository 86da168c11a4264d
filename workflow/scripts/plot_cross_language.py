"""Snakemake entry point: the cross-language figure."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from leaklab.report import cross_language_plots
from leaklab.tables.tables import read_csv_table

cross_language_plots.cross_language(read_csv_table(snakemake.input.table), snakemake.output.png)
