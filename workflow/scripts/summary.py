"""Snakemake entry point: the summary page."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from leaklab import experiments  # noqa: E402
from leaklab.report import summary  # noqa: E402
from leaklab.tables.tables import read_csv_table  # noqa: E402

experiments.configure(snakemake.params.registry)  # noqa: F821  (command experiments' key metrics)

tables = {name: read_csv_table(path) for name, path in snakemake.input.items()}  # noqa: F821
Path(snakemake.output.summary).write_text(summary.render(**tables))  # noqa: F821
