"""Snakemake entry point: the summary page."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")

from leaklab import experiments
from leaklab.report import summary
from leaklab.tables.tables import read_csv_table

specs = experiments.specs(snakemake.params.specs)

tables = {name: read_csv_table(path) for name, path in snakemake.input.items()}
Path(snakemake.output.summary).write_text(summary.render(**tables, specs=specs))
