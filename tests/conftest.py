import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "workflow"
if str(PACKAGE_DIR) not in sys.path:
    sys.path.insert(0, str(PACKAGE_DIR))
# experiments run as their own processes: they must find the package too
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_DIR), os.environ.get("PYTHONPATH")]))


def pytest_collection_modifyitems(items):
    """Every end-to-end and cluster test is slow too: `pytest -m "not slow"` is the fast tier."""
    for item in items:
        if item.get_closest_marker("e2e") or item.get_closest_marker("slurm"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def rocksdb_fixture(tmp_path_factory) -> Path:
    """A small merge-only RocksDB database: 2,000 keys x 10 operands of 64 B."""
    from leaklab.experiments.rocksdb_merge import build_fixture

    path = tmp_path_factory.mktemp("rocksdb") / "db"
    build_fixture(path, keys=2000, operands=10, operand_bytes=64, seed=7)
    return path
