"""The report's landing page as data: can this run be trusted, and what did each variant do.

A reader opens the report to learn, in a minute, whether each story's bug leaks, whether
its fix does not, and whether the controls behaved; so the page starts with what
invalidates verdicts (failed controls, runs that did not end ok, profiles that are not
the program's own) and then gives one row per experiment and variant: its role, the
verdict its story expects and the one observed, the metric that decided it with its
growth and 95 % interval, RSS beside it (the symptom users see), where the memory lives
and how many units the verdict covers.  Values are text ready to print; the numbers are
the same tables ``summary.md`` is written from, formatted by the same function.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from leaklab.model import controls as leaklab_controls
from leaklab.report import roles
from leaklab.model.amounts import amount, plural
from leaklab.report.summary import TRUSTED_PROFILES, rate

# columns other parts of the pipeline may add to variant_verdicts: shown when present
OPTIONAL_COLUMNS = {"recent_per_unit": "recent growth", "needs_confirmation": "needs confirmation"}


@dataclass
class Landing:
    controls: str                      # one sentence: passed, failed, or none ran
    controls_ok: bool | None
    failed_runs: list[str] = field(default_factory=list)
    untrusted_profiles: list[str] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    optional: dict[str, str] = field(default_factory=dict)  # column -> header, those present


def _run_name(r) -> str:
    return f"{r.experiment}/{r.variant}/{r.profiler}/rep{r.replicate}"


def _interval(row, metric: str, unit: str) -> dict[str, str]:
    """Growth per unit and its 95 % interval, as the page prints them (value, then interval)."""
    return {"value": rate(row.growth_per_unit, metric, unit),
            "ci": f"{amount(row.ci_low, metric, '+.3g')} to {amount(row.ci_high, metric, '+.3g')}"}


def _finding(row) -> dict[str, str]:
    """What decided the verdict: for retention, what was kept against its threshold;
    otherwise the growth per unit with its interval."""
    if row.verdict == "retention" and pd.notna(getattr(row, "retained", None)):
        return {"value": f"kept {amount(row.retained, row.metric)}",
                "ci": f"threshold {amount(row.retained_threshold, row.metric)}"}
    return _interval(row, row.metric, row.unit)


def _where(attribution: pd.DataFrame, experiment: str, variant: str) -> str:
    """The layers that hold the growth or the retention, as the attribution table says."""
    if attribution.empty:
        return ""
    mine = attribution[(attribution["experiment"] == experiment) & (attribution["variant"] == variant)
                       & (attribution["where"].fillna("") != "") & (attribution["layer"] != "RSS (total)")]
    return "; ".join(f"{r.layer} ({r.where})" for r in mine.itertuples())


def _horizon(verdict_row, runs: pd.DataFrame, warmup: int | None) -> str:
    """How many units the verdict covers: ``units_observed`` of the run's ``n_units`` when
    the verdicts table carries it, else the plain runs' length and warm-up."""
    unit = verdict_row.unit
    mine = runs[(runs["experiment"] == verdict_row.experiment) & (runs["variant"] == verdict_row.variant)
                & (runs["profiler"] == "plain")] if len(runs) else runs
    lengths = sorted({int(n) for n in mine["n_units"].dropna()}) if "n_units" in mine else []
    length = "–".join(str(n) for n in (lengths[0], lengths[-1]) if n is not None) if lengths else "?"
    if lengths and lengths[0] == lengths[-1]:
        length = str(lengths[0])
    observed = getattr(verdict_row, "units_observed", None)
    if observed is not None and pd.notna(observed):
        total = getattr(verdict_row, "n_units", None)
        total = int(total) if total is not None and pd.notna(total) else length
        return f"{int(observed)} of {total} {unit if str(total) == '1' else plural(unit)}"
    after = f" ({warmup} warm-up)" if warmup else ""
    return f"{length} {unit if str(length) == '1' else plural(unit)}{after} × {len(mine)} runs"


def _sort_key(experiment_order: dict[str, int], row: dict) -> tuple:
    """The planted controls first, then each story in configured order; within a story
    controls, bug, fix (roles.ROLE_ORDER), then variants without a role."""
    planted_first = 0 if row["experiment"] == "planted" else 1
    role_rank = roles.ROLE_ORDER.index(row["role"]) if row["role"] in roles.ROLE_ORDER else len(roles.ROLE_ORDER)
    return planted_first, experiment_order.get(row["experiment"], len(experiment_order)), role_rank


def build(variant_verdicts: pd.DataFrame, growth: pd.DataFrame, runs: pd.DataFrame, controls: pd.DataFrame,
          attribution: pd.DataFrame, warmups: dict[str, int], figures: dict[str, list[tuple[str, str]]]) -> Landing:
    """The landing page of one run.  ``warmups`` maps each experiment (in configured order)
    to its warm-up units; ``figures`` each experiment to its figures and charts as (label, anchor)."""
    passed = leaklab_controls.all_passed(controls)
    landing = Landing(
        controls=("No planted controls ran (add the planted experiment): the verdicts are unchecked." if passed is None
                  else f"Controls passed: all {len(controls)} planted variants got their expected verdict."
                  if passed else "Controls FAILED: the verdicts of this run are not valid."),
        controls_ok=passed,
    )
    bad = runs[runs["status"] != "ok"] if len(runs) else runs
    landing.failed_runs = [f"{_run_name(r)}: {r.status}" for r in bad.itertuples()]
    if len(runs) and "profile_status" in runs:
        untrusted = runs[~runs["profile_status"].fillna("none").isin(TRUSTED_PROFILES)]
        landing.untrusted_profiles = [f"{_run_name(r)}: {r.profile_status}: {r.profile_error}"
                                      for r in untrusted.itertuples()]
    landing.optional = {c: h for c, h in OPTIONAL_COLUMNS.items() if c in variant_verdicts}
    plain_rss = growth[(growth["profiler"] == "plain") & (growth["metric"] == "rss_bytes")].set_index(
        ["experiment", "variant"]) if len(growth) else growth
    for v in variant_verdicts.itertuples():
        role = roles.role(v.experiment, v.variant)
        rss = plain_rss.loc[(v.experiment, v.variant)] if (v.experiment, v.variant) in plain_rss.index else None
        failed = [r for r in landing.failed_runs if r.startswith(f"{v.experiment}/{v.variant}/")]
        row = {
            "experiment": v.experiment, "variant": v.variant,
            "role": role.role if role else "",
            "expected": " or ".join(role.expected) if role else "",
            "verdict": v.verdict,
            "as_expected": None if role is None else role.matches(v.verdict),
            "metric": v.metric,
            "growth": _finding(v),
            "rss": {**_interval(rss, "rss_bytes", v.unit), "verdict": rss["verdict"]} if rss is not None else None,
            "where": _where(attribution, v.experiment, v.variant),
            "horizon": _horizon(v, runs, warmups.get(v.experiment)),
            "failed_runs": len(failed),
            "figures": figures.get(v.experiment, []),
        }
        for column in landing.optional:
            value = getattr(v, column)
            row[column] = ("" if pd.isna(value) else rate(value, v.metric, v.unit) if column == "recent_per_unit"
                           else ("yes" if value else "no") if value in (True, False) else str(value))
        landing.rows.append(row)
    order = {name: i for i, name in enumerate(warmups)}
    landing.rows.sort(key=lambda row: _sort_key(order, row))
    return landing
