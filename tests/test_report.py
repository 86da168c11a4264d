"""The report's parts without a pipeline: the landing page's rows, the roles of the stories'
variants, figure names, captions and the thinning of series for the interactive charts.
The page itself, in a real browser, is tested on the end-to-end run (test_workflow.py)."""

from pathlib import Path

import pandas as pd
import yaml

from leaklab import experiments
from leaklab.report import explore, landing, report_page, roles

ROOT = Path(__file__).resolve().parents[1]
CAPTIONS = yaml.safe_load((ROOT / "workflow" / "report" / "captions.yaml").read_text())


def test_every_variant_of_every_story_has_a_role():
    for name in experiments.NAMES:
        for variant in experiments.builtin(name).variants:
            role = roles.role(name, variant)
            assert role is not None, (name, variant)
            assert role.role in roles.ROLE_ORDER and role.expected, (name, variant)
    assert roles.role("my_command", "a") is None  # a user's experiment tells no story


def test_every_figure_kind_and_chart_has_a_title_and_caption():
    kinds = [*report_page.EXPERIMENT_KINDS, *report_page.OVERVIEW, *report_page.METHOD]
    for kind in kinds:
        entry = CAPTIONS["figures"][report_page.CAPTION_OF.get(kind, kind)]
        assert entry["title"] and entry["caption"], kind
    for kind in ("explore_units", "explore_samples", "explore_sites"):
        title = CAPTIONS["interactive"][kind]["title"].format(experiment="x", unit="pass", points=1)
        assert title.startswith("x:")


def test_figure_names_split_into_kind_and_experiment():
    names = ["go_map", "map", "dict_shrink"]
    assert report_page.split_figure_name("top_sites_dict_shrink", names) == ("top_sites", "dict_shrink")
    assert report_page.split_figure_name("headline_go_map", names) == ("headline", "go_map")
    assert report_page.split_figure_name("growth_overview", names) == ("growth_overview", None)


def _verdict(experiment, variant, verdict, metric="rss_bytes", growth=1e6, **extra):
    return {"experiment": experiment, "variant": variant, "profiler": "plain", "verdict": verdict, "metric": metric,
            "unit": "pass", "growth_per_unit": growth, "ci_low": growth * 0.9, "ci_high": growth * 1.1,
            "leak_per_unit": 1e6, "retained": 0.0, "retained_threshold": 1.6e7, "verdict_reason": "", **extra}


def _tables():
    verdicts = pd.DataFrame([
        _verdict("rocksdb_merge", "capi_fixed-real", "stable", growth=0.0),
        _verdict("rocksdb_merge", "capi-real", "leak", "malloc_in_use_bytes", 7e6),
        _verdict("rocksdb_merge", "capi-dummy", "leak"),  # a control that leaks: not as expected
        _verdict("planted", "zero", "stable", growth=0.0),
    ])
    growth = verdicts.assign(metric="rss_bytes", growth_per_unit=-1020 * 1024, ci_low=-2e6, ci_high=0.0)
    runs = pd.DataFrame([
        {"experiment": e, "variant": v, "profiler": "plain", "replicate": r, "status": "ok", "n_units": 6,
         "profile_status": "none", "profile_error": None}
        for e, v in verdicts[["experiment", "variant"]].itertuples(index=False) for r in (1, 2)])
    runs.loc[0, "status"] = "timeout"
    attribution = pd.DataFrame([{"experiment": "rocksdb_merge", "variant": "capi-real", "layer": "native heap",
                                 "where": "grows here"},
                                {"experiment": "rocksdb_merge", "variant": "capi-real", "layer": "RSS (total)",
                                 "where": "grows here"}])
    controls = pd.DataFrame([{"variant": "zero", "passed": True}])
    return verdicts, growth, runs, controls, attribution


def test_landing_rows_put_controls_first_and_mark_surprises():
    verdicts, growth, runs, controls, attribution = _tables()
    page = landing.build(verdicts, growth, runs, controls, attribution, {"rocksdb_merge": 1, "planted": 2},
                         {"rocksdb_merge": [("headline", "fig-headline_rocksdb_merge")]})
    assert page.controls_ok is True
    assert page.failed_runs == ["rocksdb_merge/capi_fixed-real/plain/rep1: timeout"]
    order = [(r["experiment"], r["variant"], r["role"]) for r in page.rows]
    assert order == [("planted", "zero", "control"), ("rocksdb_merge", "capi-dummy", "control"),
                     ("rocksdb_merge", "capi-real", "bug"), ("rocksdb_merge", "capi_fixed-real", "fix")]
    by_variant = {r["variant"]: r for r in page.rows}
    assert by_variant["capi-dummy"]["as_expected"] is False
    assert by_variant["capi-real"]["as_expected"] is True
    assert by_variant["capi-real"]["where"] == "native heap (grows here)"  # RSS (total) is not a place
    assert by_variant["capi-real"]["growth"] == {"value": "+6.68 MiB/pass", "ci": "+6.01 MiB to +7.34 MiB"}
    assert by_variant["capi-real"]["rss"]["verdict"] == "leak" and by_variant["capi-real"]["rss"]["value"].startswith("-")
    assert by_variant["capi_fixed-real"]["failed_runs"] == 1
    assert by_variant["capi-real"]["horizon"] == "6 passes (1 warm-up) × 2 runs"
    assert page.optional == {}


def test_landing_shows_the_columns_other_parts_add():
    verdicts, growth, runs, controls, attribution = _tables()
    verdicts = verdicts.assign(units_observed=5, n_units=6, recent_per_unit=2048.0, needs_confirmation=False)
    page = landing.build(verdicts, growth, runs, controls, attribution, {"rocksdb_merge": 1, "planted": 2}, {})
    row = page.rows[0]
    assert row["horizon"] == "5 of 6 passes"
    assert row["recent_per_unit"] == "+2 KiB/pass" and row["needs_confirmation"] == "no"
    assert list(page.optional) == ["recent_per_unit", "needs_confirmation"]


def test_thinning_keeps_peaks_and_ends():
    t = pd.Series(range(10_000), dtype=float)
    frame = pd.DataFrame({"run": "a", "t": t, "shown": 0.0})
    frame.loc[5_000, "shown"] = 99.0
    thinned = explore.thin(frame, ["run"], "t", "shown", max_points=100)
    assert len(thinned) <= 102
    assert thinned["shown"].max() == 99.0
    assert thinned["t"].iloc[0] == 0 and thinned["t"].iloc[-1] == 9_999


def test_units_chart_is_one_panel_per_metric_with_bytes_in_mib():
    units = pd.DataFrame([{"experiment": "fd_leak", "variant": v, "profiler": "plain", "replicate": 1, "unit": u,
                           "t": u * 0.1, "metric": m, "value": val}
                          for v in ("close", "leak") for u in range(5)
                          for m, val in (("rss_bytes", 2**20 * (10 + u)), ("deleted_fds", u))])
    spec = explore.units_chart(units, "fd_leak", "rotation")
    values = next(iter(spec["datasets"].values()))
    assert {v["series"] for v in values} == {"rss_bytes (MiB)", "deleted_fds"}
    assert max(v["shown"] for v in values if v["series"] == "rss_bytes (MiB)") == 14
    assert spec["facet"]["row"]["field"] == "series"
    assert explore.units_chart(units, "go_fd", "rotation") is None


def test_sites_chart_stacks_the_largest_sites_and_the_rest_of_the_heap():
    sites = pd.DataFrame([{"experiment": "dict_shrink", "profiler": "massif", "variant": "dict", "replicate": 1,
                           "t": t, "site": f"site{i}", "bytes": (i + 1) * 100 * (t + 1), "heap_bytes": 10_000 * (t + 1),
                           "source": "massif"} for t in range(3) for i in range(10)])
    spec = explore.sites_chart(sites, "dict_shrink", top=3)
    values = pd.DataFrame(next(iter(spec["datasets"].values())))
    assert set(values["site"]) == {"site9", "site8", "site7", "other"}
    stacked = values.groupby("t")["bytes"].sum()
    assert list(stacked) == [10_000, 20_000, 30_000]  # a stack is as tall as the profile's heap


def test_landing_gives_what_was_kept_for_a_retention():
    verdicts = pd.DataFrame([_verdict("dict_shrink", "dict", "retention", "dict_size_bytes", 0.0,
                                      retained=10 * 2**20, retained_threshold=4 * 2**20)])
    runs = pd.DataFrame([{"experiment": "dict_shrink", "variant": "dict", "profiler": "plain", "replicate": 1,
                          "status": "ok", "n_units": 4}])
    page = landing.build(verdicts, pd.DataFrame(), runs, pd.DataFrame(), pd.DataFrame(), {"dict_shrink": 1}, {})
    assert page.rows[0]["growth"] == {"value": "kept 10 MiB", "ci": "threshold 4 MiB"}
    assert page.rows[0]["rss"] is None and page.controls_ok is None
