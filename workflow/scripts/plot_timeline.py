"""Snakemake entry point: the timeline figure of one experiment."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

import pandas as pd  # noqa: E402

from leaklab import plots  # noqa: E402

plots.timeline(
    pd.read_csv(snakemake.input.samples),  # noqa: F821
    pd.read_csv(snakemake.input.units),  # noqa: F821
    snakemake.wildcards.experiment,  # noqa: F821
    snakemake.output[0],  # noqa: F821
)
