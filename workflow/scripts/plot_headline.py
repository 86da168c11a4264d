"""Snakemake entry point: the headline figure of one experiment."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from leaklab import experiments
from leaklab.report import plots
from leaklab.tables.tables import read_csv_table

specs = experiments.specs(snakemake.params.specs)

plots.headline(
    read_csv_table(snakemake.input.units),
    read_csv_table(snakemake.input.growth),
    read_csv_table(snakemake.input.verdicts),
    snakemake.wildcards.experiment,
    snakemake.output.png,
    specs=specs,
)
