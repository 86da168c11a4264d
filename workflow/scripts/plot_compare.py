"""Snakemake entry point: one story's bug, fix and control on the same metrics."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from leaklab import experiments
from leaklab.report import compare_plots
from leaklab.tables.tables import read_csv_table

specs = experiments.specs(snakemake.params.specs)

compare_plots.compare(
    read_csv_table(snakemake.input.units),
    read_csv_table(snakemake.input.growth),
    snakemake.wildcards.experiment,
    snakemake.output.png,
    specs=specs,
)
