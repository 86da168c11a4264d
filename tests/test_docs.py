"""The documentation and the linters: `make docs` builds the site strictly (a broken link
fails), `make lint` and ruff pass, the README stays short and points at pages that exist,
and the Layout page names every module, rule file and script."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from leaklab.commands import VERBS

VENV = Path(sys.executable).parent.parent  # the venv this suite runs in: what `make` would use
NO_BANNER = {"NO_MKDOCS_2_WARNING": "1"}


def make(root, *args, env=None):
    """A make target without its `setup` prerequisite (which would install into the venv)."""
    return subprocess.run(["make", "--no-print-directory", "-C", str(root), "-o", "setup", f"VENV={VENV}", *args],
                          capture_output=True, text=True, env={**os.environ, **(env or {})})


def mkdocs_build(project: Path, site: Path):
    return subprocess.run([str(VENV / "bin" / "mkdocs"), "build", "--strict", "--site-dir", str(site)],
                          capture_output=True, text=True, cwd=project, env={"PATH": "/usr/bin:/bin", **NO_BANNER})


def test_make_docs_builds_the_site_strictly(root, tmp_path):
    done = make(root, "docs", f"SITE={tmp_path / 'site'}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    site = tmp_path / "site"
    assert (site / "index.html").exists() and (site / "layout.html").exists()
    findings = sorted(p.name for p in (root / "docs" / "findings").glob("20*.md"))
    assert len(findings) >= 9
    for page in findings:  # every dated finding is a page of the site
        assert (site / "findings" / page.replace(".md", ".html")).exists(), page
    assert (site / "growth_overview.png").exists() and (site / "attribution.png").exists()


@pytest.mark.slow
def test_a_broken_link_fails_the_build_and_incoming_pages_stay_out(root, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(root / "docs", project / "docs", ignore=shutil.ignore_patterns("_incoming"))
    shutil.copy(root / "mkdocs.yml", project / "mkdocs.yml")
    incoming = project / "docs" / "_incoming"
    incoming.mkdir()
    (incoming / "some-branch.md").write_text("# Not folded in yet\n\nSee [nowhere](nowhere.md).\n")
    done = mkdocs_build(project, tmp_path / "site")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (tmp_path / "site" / "_incoming").exists()

    page = project / "docs" / "cluster.md"
    page.write_text(page.read_text() + "\nSee [the missing page](missing.md).\n")
    broken = mkdocs_build(project, tmp_path / "site2")
    assert broken.returncode != 0 and "missing.md" in broken.stderr


def test_the_readme_is_short_and_its_links_exist(root):
    readme = (root / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme) + re.findall(r'src="([^"]+)"', readme)
    assert len(targets) > 10
    for target in targets:
        assert (root / target).exists(), f"README links to {target}, which does not exist"


def test_every_command_the_readme_names_exists(root):
    readme = (root / "README.md").read_text()
    targets = set(re.findall(r"`make ([a-z-]+)", readme))
    assert {"run", "test", "docs", "lint"} <= targets
    listed = make(root, "help").stdout
    for target in targets:
        assert re.search(rf"^{target}\t", listed, re.M), f"make {target} is in the README, not in the Makefile"
    verbs = set(re.findall(r"`leaklab ([a-z]+)", readme))
    assert verbs == set(VERBS), verbs ^ set(VERBS)


def test_the_make_targets_run_the_leaklab_verbs_and_the_suite(root):
    """What `make run`, `make test` and the other targets run, their installing part aside
    (the verbs themselves are exercised in test_cli.py, test_workflow.py, test_nightly.py)."""
    for target in ("run", "report", "nightly", "sweep", "bench"):
        done = make(root, "-n", target)
        assert done.returncode == 0 and re.search(rf"/bin/leaklab {target}$", done.stdout, re.M), done.stdout
    suite = make(root, "-n", "test")
    assert suite.returncode == 0 and re.search(r"/bin/python -m pytest .* tests$", suite.stdout, re.M), suite.stdout


def test_the_layout_page_names_every_module_rule_file_and_script(root):
    layout = (root / "docs" / "layout.md").read_text()
    workflow = root / "workflow"
    names = {p.stem for p in (workflow / "leaklab").rglob("*.py") if p.stem not in ("__init__", "__main__")}
    names |= {p.name for p in (workflow / "leaklab").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    names |= {p.name for p in (workflow / "rules").glob("*.smk")}
    names |= {p.stem for p in (workflow / "scripts").glob("*.py")}
    missing = sorted(name for name in names if not re.search(rf"(?<![\w/-]){re.escape(name)}(?![\w-])", layout))
    assert not missing, f"docs/layout.md does not name {missing}"


def test_ruff_passes(root):
    done = subprocess.run([str(VENV / "bin" / "ruff"), "check", "--no-cache", str(root)],
                          capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.slow
def test_make_lint_passes_and_fails_on_a_workflow_lint(root, tmp_path):
    done = make(root, "lint")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "All checks passed" in done.stdout and "snakemake --lint: clean" in done.stdout
    (tmp_path / "Snakefile").write_text('rule no_log:\n    output: "x.txt"\n    shell: "touch x.txt"\n')
    snakemake = f"{VENV}/bin/snakemake --snakefile {tmp_path / 'Snakefile'} --directory {tmp_path}"
    bad = make(root, "lint", f"SNAKEMAKE={snakemake}")
    assert bad.returncode != 0 and "No log directive defined" in bad.stdout, bad.stdout[-2000:]
