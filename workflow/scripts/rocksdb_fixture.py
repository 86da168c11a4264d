"""Snakemake entry point: build the rocksdb_merge fixture database once."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from leaklab.experiments.rocksdb_merge import build_fixture  # noqa: E402

p = snakemake.params.settings  # noqa: F821
facts = build_fixture(snakemake.output[0], int(snakemake.wildcards.n_keys), int(p["operands"]), int(p["operand_bytes"]), int(p["seed"]))  # noqa: F821
print(f"fixture: {facts}", file=sys.stderr)
