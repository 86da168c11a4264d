"""Snakemake entry point: the timeline, headline and comparison figures of one experiment."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from leaklab import experiments
from leaklab.report import compare_plots, plots, timeline_plots
from leaklab.tables.tables import read_csv_table

specs = experiments.specs(snakemake.params.specs)
experiment = snakemake.wildcards.experiment
units = read_csv_table(snakemake.input.units)
growth = read_csv_table(snakemake.input.growth)

timeline_plots.timeline(read_csv_table(snakemake.input.samples), units, experiment, snakemake.output.timeline,
                        specs=specs)
plots.headline(units, growth, read_csv_table(snakemake.input.verdicts), experiment, snakemake.output.headline,
               specs=specs)
compare_plots.compare(units, growth, experiment, snakemake.output.compare, specs=specs)
