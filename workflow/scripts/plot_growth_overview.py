"""Snakemake entry point: the growth-per-unit overview figure."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from leaklab import experiments  # noqa: E402
from leaklab.report import plots  # noqa: E402
from leaklab.tables.tables import read_csv_table  # noqa: E402

experiments.configure(snakemake.params.registry)  # noqa: F821  (command experiments)

plots.growth_overview(read_csv_table(snakemake.input.growth), snakemake.output.png)  # noqa: F821
