"""Snakemake entry point: the summary page and the summary figures."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from leaklab import plots, summary  # noqa: E402
from leaklab.tables import read_csv_table  # noqa: E402

tables = {name: read_csv_table(path) for name, path in snakemake.input.items()}  # noqa: F821
Path(snakemake.output.summary).write_text(summary.render(**tables))  # noqa: F821
plots.verdict_matrix(tables["growth"], snakemake.output.matrix)  # noqa: F821
plots.attribution_bars(tables["attribution"], snakemake.output.attribution)  # noqa: F821
