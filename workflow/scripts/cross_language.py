"""Snakemake entry point: the cross-language table (see leaklab.tables.cross_language)."""

import sys

sys.stderr = open(snakemake.log[0], "w")

from leaklab.tables import cross_language
from leaklab.tables.tables import read_csv_table

table = cross_language.table(read_csv_table(snakemake.input.growth), read_csv_table(snakemake.input.top_sites))
table.to_csv(snakemake.output[0], index=False)
print(f"cross_language: {len(table)} rows, {table['mechanism'].nunique()} mechanisms", file=sys.stderr)
