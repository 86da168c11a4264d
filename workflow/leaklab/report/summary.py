"""``results/summary.md``: the run in a page of text, for terminals and CI logs.

Says first whether the verdicts can be trusted (the planted controls), then which
runs failed, then every verdict with its growth and interval, and where it lives.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from leaklab.model import controls as leaklab_controls
from leaklab.experiments import Spec
from leaklab.model.amounts import amount, counted, plural

TRUSTED_PROFILES = ("ok", "none")  # a profile of the program itself, or no profiler


def rate(value: float, metric: str, unit: str) -> str:
    text = amount(value, metric, "+.3g")
    return text if text == "n/a" else f"{text}/{unit}"


def verdict_text(row) -> str:
    """The verdict, marked when its runs did not all end ``ok`` (a program that crashed
    or failed: the verdict stands on what it measured before), with the horizon it covers
    when the runs went past their window (``leaklab.model.horizon``)."""
    text = f"**{row.verdict}**"
    not_ok = getattr(row, "runs_not_ok", "")
    if isinstance(not_ok, str) and not_ok:
        text += f" ⚠ from runs that did not end ok ({not_ok})"
    ended = getattr(row, "confirmation", "")
    if isinstance(ended, str) and ended:
        text += f" (runs ended: {ended}; {getattr(row, 'units_observed', float('nan')):.0f} {plural(row.unit)} observed"
        level = getattr(row, "plateau_level", float("nan"))
        if row.verdict == "settling" and pd.notna(level):
            text += (f"; levelled off at {amount(level, row.metric)} from {row.unit} "
                     f"{getattr(row, 'levelled_off_unit', float('nan')):.0f}")
        text += ")"
    return text


def _table(frame: pd.DataFrame) -> list[str]:
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    return [header, rule, *("| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False))]


def _worth_showing(row: pd.Series, specs: Mapping[str, Spec]) -> bool:
    """RSS, the experiment's own key metrics, and anything that is not plainly stable."""
    spec = specs.get(row["experiment"])
    key_metrics = spec.key_metrics if spec else ()
    return row["metric"] == "rss_bytes" or row["metric"] in key_metrics or row["verdict"] != "stable"


def _sensitivity_lines(sensitivity: pd.DataFrame) -> list[str]:
    """What each experiment can catch, in its own units (leaks planted into its baseline)."""
    if sensitivity is None or sensitivity.empty:
        return []
    lines = ["**Sensitivity** (linear leaks planted into each baseline's recorded series, judged as real data):", ""]
    for r in sensitivity.itertuples():
        caught = "caught" if bool(r.detected_at_threshold) else "**not caught**"
        lines.append(f"- {r.experiment} {r.metric}: threshold {rate(r.leak_per_unit, r.metric, r.unit)} {caught} "
                     f"at {counted(r.n_units, r.unit)} x {r.n_replicates} runs; smallest detected "
                     f"{rate(r.smallest_detected, r.metric, r.unit)}")
    return [*lines, ""]


def render(runs: pd.DataFrame, growth: pd.DataFrame, controls: pd.DataFrame, attribution: pd.DataFrame,
           variant_verdicts: pd.DataFrame | None = None, sensitivity: pd.DataFrame | None = None, *,
           specs: Mapping[str, Spec]) -> str:
    lines = ["# leaklab summary", ""]
    passed = leaklab_controls.all_passed(controls)
    if passed is None:
        lines += ["**Controls: none ran** (add the `planted` experiment): verdicts are unchecked.", ""]
    elif passed:
        found = controls[(controls["planted_bytes_per_step"] > 0) & controls["passed"]]
        smallest = found["planted_bytes_per_step"].min() if len(found) else float("nan")
        lines += [f"**Controls: passed** ({len(controls)} planted variants). Smallest planted leak detected "
                  f"in `planted`: {rate(smallest, 'rss_bytes', 'step')}.", ""]
    else:
        failed = controls[~controls["passed"]]
        lines += ["**Controls: FAILED: the verdicts of this run are not valid.**", ""]
        lines += [f"- `{r.variant}`: expected {r.expected_verdict}, got {r.verdict} "
                  f"({rate(r.growth_per_unit, 'rss_bytes', 'step')} for "
                  f"{amount(r.planted_bytes_per_step, 'planted_bytes')}/step planted)"
                  for r in failed.itertuples()]
        lines.append("")
    bad = runs[runs["status"] != "ok"] if not runs.empty else runs
    lines.append(f"**Runs:** {len(runs)} in all, {len(runs) - len(bad)} ok.")
    lines += [f"- {r.experiment}/{r.variant}/{r.profiler}/rep{r.replicate}: **{r.status}**" for r in bad.itertuples()]
    lines.append("")
    noisy = runs[runs["bad_unit_lines"].fillna(0) > 0] if "bad_unit_lines" in runs else runs.iloc[:0]
    if len(noisy):
        lines.append("**Bad unit lines** (written by the measured program; skipped, see each run's meta.json):")
        lines += [f"- {r.experiment}/{r.variant}/{r.profiler}/rep{r.replicate}: {int(r.bad_unit_lines)}, "
                  f"first: `{r.first_bad_unit_line}`" for r in noisy.itertuples()]
        lines.append("")
    untrusted = runs[~runs["profile_status"].fillna("none").isin(TRUSTED_PROFILES)] \
        if "profile_status" in runs else runs.iloc[:0]
    if len(untrusted):
        lines += ["**Profiles not to read as the program's:**", ""]
        lines += [f"- {r.experiment}/{r.variant}/{r.profiler}/rep{r.replicate}: **{r.profile_status}**: "
                  f"{r.profile_error}" for r in untrusted.itertuples()]
        lines.append("")
    lines += _sensitivity_lines(sensitivity)
    if variant_verdicts is not None and not variant_verdicts.empty:
        lines += ["## Verdict per variant (the deciding metric)", ""]
        rows = [(r.experiment, r.variant, verdict_text(r), r.metric,
                 f"{rate(r.growth_per_unit, r.metric, r.unit)} [{rate(r.ci_low, r.metric, r.unit)}, "
                 f"{rate(r.ci_high, r.metric, r.unit)}]", r.verdict_reason)
                for r in variant_verdicts.sort_values(["experiment", "variant"]).itertuples()]
        lines += _table(pd.DataFrame(rows, columns=["experiment", "variant", "verdict", "decided by", "growth (95% CI)",
                                                    "why"]))
        lines.append("")
    if not growth.empty and "verdict" in growth:
        lines += ["## Verdicts (plain runs, RSS and the metric that matters)", ""]
        shown = growth[(growth["profiler"] == "plain") & growth["verdict"].notna()]
        shown = shown[shown.apply(_worth_showing, axis=1, specs=specs).astype(bool)] if len(shown) else shown
        rows = []
        for r in shown.sort_values(["experiment", "variant", "metric"]).itertuples():
            interval = f"[{rate(r.ci_low, r.metric, r.unit)}, {rate(r.ci_high, r.metric, r.unit)}]"
            rows.append((r.experiment, r.variant, r.metric, f"**{r.verdict}**",
                         rate(r.growth_per_unit, r.metric, r.unit), interval, int(r.n_replicates)))
        lines += _table(pd.DataFrame(rows, columns=["experiment", "variant", "metric", "verdict",
                                                    "growth", "95% CI", "replicates"]))
        lines.append("")
    if not attribution.empty:
        where = attribution[attribution["where"].fillna("") != ""]
        if len(where):
            lines += ["## Where it lives", ""]
            lines += [f"- {r.experiment}/{r.variant}: {r.where} -> **{r.layer}** ({r.source})"
                      + (f": {r.explanation}" if isinstance(getattr(r, "explanation", None), str) else "")
                      for r in where.itertuples() if r.layer != "RSS (total)"]
            lines.append("")
    return "\n".join(lines) + "\n"
