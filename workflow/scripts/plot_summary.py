"""Snakemake entry point: the verdict matrix and the layer attribution figures."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from leaklab import experiments  # noqa: E402
from leaklab.report import plots  # noqa: E402
from leaklab.tables.tables import read_csv_table  # noqa: E402

experiments.configure(snakemake.params.registry)  # noqa: F821  (command experiments)

tables = {name: read_csv_table(path) for name, path in snakemake.input.items()}  # noqa: F821
plots.verdict_matrix(tables["verdicts"], snakemake.output.matrix)  # noqa: F821
plots.attribution_bars(tables["attribution"], tables["growth"], snakemake.output.attribution)  # noqa: F821
