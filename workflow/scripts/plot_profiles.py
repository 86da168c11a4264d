"""Snakemake entry point: heap timelines and top sites of one experiment."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from leaklab import experiments
from leaklab.report import profile_plots
from leaklab.tables.tables import read_csv_table

specs = experiments.specs(snakemake.params.specs)

experiment = snakemake.wildcards.experiment
runs = read_csv_table(snakemake.input.runs)
profile_plots.heap_timelines(read_csv_table(snakemake.input.heap_timeline), experiment, snakemake.output.timeline,
                             runs=runs, specs=specs)
profile_plots.top_sites(read_csv_table(snakemake.input.top_sites), experiment, snakemake.output.sites, runs=runs,
                        specs=specs)
