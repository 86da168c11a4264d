"""Snakemake entry point: the growth-per-unit overview figure."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from leaklab import experiments
from leaklab.report import plots
from leaklab.tables.tables import read_csv_table

specs = experiments.specs(snakemake.params.specs)

plots.growth_overview(read_csv_table(snakemake.input.growth), snakemake.output.png, specs=specs)
