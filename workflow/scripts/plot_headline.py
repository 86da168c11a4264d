"""Snakemake entry point: the headline figure of one experiment."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from leaklab import experiments  # noqa: E402
from leaklab.report import plots  # noqa: E402
from leaklab.tables.tables import read_csv_table  # noqa: E402

experiments.configure(snakemake.params.registry)  # noqa: F821  (command experiments)

plots.headline(
    read_csv_table(snakemake.input.units),  # noqa: F821
    read_csv_table(snakemake.input.growth),  # noqa: F821
    read_csv_table(snakemake.input.verdicts),  # noqa: F821
    snakemake.wildcards.experiment,  # noqa: F821
    snakemake.output.png,  # noqa: F821
)
