"""Snakemake entry point: the verdict matrix and the layer attribution figures."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from leaklab import experiments
from leaklab.report import attribution_plots, plots
from leaklab.tables.tables import read_csv_table

specs = experiments.specs(snakemake.params.specs)

tables = {name: read_csv_table(path) for name, path in snakemake.input.items()}
plots.verdict_matrix(tables["verdicts"], snakemake.output.matrix, specs=specs)
attribution_plots.attribution_bars(tables["attribution"], tables["growth"], snakemake.output.attribution, specs=specs)
