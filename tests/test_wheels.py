"""Source builds for versions without a wheel: built once into the cache, reused after."""

import io
import subprocess
import sys

import pytest

from leaklab.process import wheels

SETUP = """from setuptools import setup
setup(name="leaklabtiny", version="0.1", py_modules=["leaklabtiny"])
"""


def sdist(tmp_path, setup: str = SETUP):
    source = tmp_path / "src"
    source.mkdir()
    (source / "setup.py").write_text(setup)
    (source / "leaklabtiny.py").write_text("VALUE = 42\n")
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path / "dist")], cwd=source,
                   check=True, capture_output=True)
    [found] = (tmp_path / "dist").glob("*.tar.gz")
    return found


@pytest.mark.slow
def test_a_source_distribution_is_built_once_into_the_cache_and_reused(tmp_path):
    cache = tmp_path / "cache"
    said = io.StringIO()
    wheel = wheels.ensure("leaklabtiny", str(sdist(tmp_path)), "0.1", cache=cache, requirements=("setuptools", "wheel"),
                          log=said)
    assert wheel.parent == cache / "wheels" / "leaklabtiny-0.1" and wheel.suffix == ".whl"
    assert "building it from its source distribution once (expect a few minutes)" in said.getvalue()
    assert (cache / "logs" / "leaklabtiny-0.1.log").stat().st_size > 0
    again = io.StringIO()
    assert wheels.ensure("leaklabtiny", "unused", "0.1", cache=cache, log=again) == wheel
    assert "cached wheel" in again.getvalue()
    # the wheel installs and works
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
                   check=True)
    assert (target / "leaklabtiny.py").read_text() == "VALUE = 42\n"


@pytest.mark.slow
def test_a_failed_build_names_its_log_and_leaves_no_wheel(tmp_path):
    cache = tmp_path / "cache"
    broken = sdist(tmp_path, "import sys\nif 'bdist_wheel' in sys.argv:\n"
                             "    raise SystemExit('this package does not build')\n" + SETUP)
    with pytest.raises(RuntimeError, match=r"the build failed .*leaklabtiny-0.1.log"):
        wheels.ensure("leaklabtiny", str(broken), "0.1", cache=cache, requirements=("setuptools", "wheel"),
                      log=io.StringIO())
    assert wheels.find("leaklabtiny", "0.1", cache) is None
    assert "does not build" in (cache / "logs" / "leaklabtiny-0.1.log").read_text()
