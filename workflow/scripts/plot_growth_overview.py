"""Snakemake entry point: the growth-per-unit overview figure."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

import pandas as pd  # noqa: E402

from leaklab import plots  # noqa: E402

plots.growth_overview(pd.read_csv(snakemake.input.growth), snakemake.output[0])  # noqa: F821
