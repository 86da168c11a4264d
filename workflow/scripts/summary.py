"""Snakemake entry point: the summary page."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

import yaml  # noqa: E402

from leaklab import experiments, findings, summary  # noqa: E402
from leaklab.tables import read_csv_table  # noqa: E402

experiments.configure(snakemake.params.registry)  # noqa: F821  (command experiments' key metrics)

tables = {name: read_csv_table(path) for name, path in snakemake.input.items()}  # noqa: F821
Path(snakemake.output.summary).write_text(summary.render(**tables))  # noqa: F821
landing = findings.landing(tables["runs"], tables["controls"], tables.get("variant_verdicts"))
Path(snakemake.output.findings).write_text(yaml.safe_dump(landing, sort_keys=True, allow_unicode=True))  # noqa: F821
