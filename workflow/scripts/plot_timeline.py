"""Snakemake entry point: the timeline figure of one experiment."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from leaklab import experiments
from leaklab.report import timeline_plots
from leaklab.tables.tables import read_csv_table

specs = experiments.specs(snakemake.params.specs)

timeline_plots.timeline(
    read_csv_table(snakemake.input.samples),
    read_csv_table(snakemake.input.units),
    snakemake.wildcards.experiment,
    snakemake.output.png,
    specs=specs,
)
