import os
import sys

# The leaklab package lives in workflow/ (installed into the venv by `make setup`, which
# jobs use); the path lets the workflow be parsed from a bare checkout too.
PACKAGE_DIR = os.path.abspath(os.path.join(workflow.basedir, "workflow"))
if PACKAGE_DIR not in sys.path:
    sys.path.insert(0, PACKAGE_DIR)

from leaklab.measure.validation import ConfigError, load_yaml

# Snakemake says only "not valid JSON or YAML" of a broken config file: check it first,
# so the error names the file and the line.
if os.path.exists("config.yaml"):
    try:
        load_yaml("config.yaml")
    except ConfigError as error:
        raise WorkflowError(f"config: {error}") from None
