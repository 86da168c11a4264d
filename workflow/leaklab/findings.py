"""The HTML report's landing page: what the run found, before how it was run.

Snakemake's report opens on the workflow's graph unless it is given metadata; the
summary rule writes these findings as that metadata (``results/report_findings.yaml``,
passed by ``leaklab report``), so the report opens on the controls, the runs that did
not end well, the profiles not to trust and the verdict of every variant.  Values are
reStructuredText, which the report renders.
"""

from __future__ import annotations

import pandas as pd

from leaklab import controls as leaklab_controls
from leaklab.summary import TRUSTED_PROFILES, rate


def _run_name(r) -> str:
    return f"{r.experiment}/{r.variant}/{r.profiler}/rep{r.replicate}"


def landing(runs: pd.DataFrame, controls: pd.DataFrame, variant_verdicts: pd.DataFrame | None) -> dict:
    """Findings, most important first: can the verdicts be trusted, what failed, what leaks."""
    passed = leaklab_controls.all_passed(controls)
    found: dict[str, str | list[str]] = {
        "1. Controls": ("none ran (add the ``planted`` experiment): the verdicts are unchecked" if passed is None
                        else f"**passed** ({len(controls)} planted variants)" if passed
                        else "**FAILED**: the verdicts of this run are not valid (see controls.csv)"),
    }
    bad = runs[runs["status"] != "ok"] if len(runs) else runs
    found["2. Runs"] = f"{len(runs)} in all, {len(runs) - len(bad)} ok"
    if len(bad):
        found["3. Runs that did not end ok"] = [f"{_run_name(r)}: **{r.status}**" for r in bad.itertuples()]
    if len(runs) and "profile_status" in runs:
        untrusted = runs[~runs["profile_status"].fillna("none").isin(TRUSTED_PROFILES)]
        if len(untrusted):
            found["4. Profiles not to read as the program's"] = [
                f"{_run_name(r)}: **{r.profile_status}**: {r.profile_error}" for r in untrusted.itertuples()]
    if variant_verdicts is not None and len(variant_verdicts):
        found["5. Verdict per variant"] = [
            f"{r.experiment}/{r.variant}: **{r.verdict}**, {r.metric} {rate(r.growth_per_unit, r.metric, r.unit)} "
            f"[{rate(r.ci_low, r.metric, r.unit)}, {rate(r.ci_high, r.metric, r.unit)}]"
            for r in variant_verdicts.sort_values(["experiment", "variant"]).itertuples()]
    return found
