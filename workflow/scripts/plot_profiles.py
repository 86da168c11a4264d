"""Snakemake entry point: heap timelines and top sites of one experiment."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from leaklab import experiments  # noqa: E402
from leaklab.report import profile_plots  # noqa: E402
from leaklab.tables.tables import read_csv_table  # noqa: E402

experiments.configure(snakemake.params.registry)  # noqa: F821  (command experiments)

experiment = snakemake.wildcards.experiment  # noqa: F821
runs = read_csv_table(snakemake.input.runs)  # noqa: F821
profile_plots.heap_timelines(read_csv_table(snakemake.input.heap_timeline), experiment, snakemake.output.timeline,  # noqa: F821
                             runs=runs)
profile_plots.top_sites(read_csv_table(snakemake.input.top_sites), experiment, snakemake.output.sites, runs=runs)  # noqa: F821
