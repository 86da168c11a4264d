"""The real Snakemake workflow on the small config: the output contract, end to end."""

import re
import subprocess
import sys
from datetime import datetime

import duckdb
import pandas as pd
import pytest
import yaml
from leaklab.tables.tables import TABLES

pytestmark = pytest.mark.e2e


def snakemake(root, workdir, *args):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"), "--directory", str(workdir),
         "--configfile", str(root / "tests" / "config.yaml"), "--cores", "4", *args],
        capture_output=True, text=True,
    )


@pytest.fixture(scope="module")
def results(root, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("workflow")
    done = snakemake(root, workdir)
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir


def verdict(growth, experiment, variant, metric):
    row = growth.query("experiment == @experiment and variant == @variant and metric == @metric "
                       "and profiler == 'plain'")
    assert len(row) == 1, (experiment, variant, metric)
    return row.iloc[0]


def test_every_experiment_and_variant_ran_every_replicate(results):
    runs = pd.read_csv(results / "results" / "tables" / "runs.csv")
    assert len(runs.query("profiler == 'plain'")) == (5 + 2 + 2 + 2 + 5) * 2
    assert len(runs) == (5 + 2 + 2 + 2 + 5) * 2 + 3 * 2 + 2 * 2
    assert set(runs["status"]) == {"ok"}
    for path in (results / "results" / "runs").glob("*/*/plain/rep*"):
        for name in ("meta.json", "samples.parquet", "marks.parquet"):
            assert (path / name).stat().st_size > 0
        assert (path / "run.log").exists()  # the process's output: empty when all went well


def run_intervals(workdir):
    """(experiment, profiler, start, end) of every run_experiment job, from Snakemake's log."""
    log = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))[0].read_text()
    stamp, rule, started, intervals, names = None, None, {}, [], {}
    for line in log.splitlines():
        if m := re.match(r"\[(\w{3} \w{3} +\d+ [\d:]{8} \d{4})\]$", line):
            stamp = datetime.strptime(" ".join(m.group(1).split()), "%a %b %d %H:%M:%S %Y")
        elif m := re.match(r"(?:local)?rule (\w+):", line):
            rule = m.group(1)
        elif (m := re.match(r"\s+jobid: (\d+)", line)) and rule == "run_experiment":
            started[m.group(1)] = stamp
        elif (m := re.match(r"\s+wildcards: experiment=(\w+), .*profiler=(\w+)", line)) and rule == "run_experiment":
            names[list(started)[-1]] = m.groups()
            rule = None
        elif (m := re.match(r"Finished jobid: (\d+)", line)) and m.group(1) in started:
            intervals.append((*names[m.group(1)], started[m.group(1)], stamp))
    return intervals


def test_cpu_bound_runs_of_a_kind_run_alone_and_paced_ones_beside_them(results):
    """measure=1, profile=1: no two CPU-bound plain runs at once, nor two profiled ones;
    a paced experiment's runs (they wait for their own clock) go beside them (paced=3),
    which is what keeps the default run short."""
    from leaklab import experiments

    PACED = [name for name in experiments.NAMES if experiments.builtin(name).paced]

    intervals = run_intervals(results)
    assert len(intervals) == 42
    for plain in (True, False):
        cpu_bound = sorted((start, end) for name, profiler, start, end in intervals
                           if name not in PACED and (profiler == "plain") == plain)
        assert cpu_bound
        for (_, end), (start, _) in zip(cpu_bound, cpu_bound[1:]):
            assert start >= end
    cpu_bound = [(start, end) for name, _, start, end in intervals if name not in PACED]
    paced = [(start, end) for name, _, start, end in intervals if name in PACED]
    assert any(p_start < end and start < p_end for p_start, p_end in paced for start, end in cpu_bound)


def test_duckdb_file_holds_every_table(results):
    con = duckdb.connect(str(results / "results" / "leaklab.duckdb"), read_only=True)
    for table in TABLES:
        assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, table
        assert (results / "results" / "tables" / f"{table}.csv").exists()


def test_verdicts_show_the_physics(results):
    growth = pd.read_csv(results / "results" / "tables" / "growth.csv")
    leak = verdict(growth, "rocksdb_merge", "capi-real", "rss_bytes")
    assert leak["verdict"] == "leak"
    # about keys x merged value per pass: 10,000 x 640 B
    assert 6.0e6 <= leak["growth_per_unit"] <= 8.5e6
    for variant in ("binding-real", "capi_fixed-real", "capi-dummy", "binding-dummy"):
        assert verdict(growth, "rocksdb_merge", variant, "rss_bytes")["verdict"] != "leak", variant
    fd = verdict(growth, "fd_leak", "leak", "deleted_fds")
    assert fd["verdict"] == "leak" and fd["growth_per_unit"] == pytest.approx(1.0, abs=0.1)
    assert verdict(growth, "fd_leak", "close", "deleted_fds")["growth_per_unit"] == 0
    assert verdict(growth, "fd_leak", "leak", "rss_bytes")["verdict"] != "leak"  # the heap looks fine
    assert verdict(growth, "dict_shrink", "dict", "dict_size_bytes")["verdict"] == "retention"
    assert verdict(growth, "dict_shrink", "rebuilt", "dict_size_bytes")["verdict"] == "stable"
    assert verdict(growth, "duckdb_load", "load_on", "rss_bytes")["n_replicates"] == 2
    assert verdict(growth, "duckdb_load", "load_on", "rss_bytes")["unit"] == "dropped table"
    # one verdict per variant, from the metric that decided it
    decided = pd.read_csv(results / "results" / "tables" / "variant_verdicts.csv").set_index(["experiment", "variant"])
    assert decided.loc[("rocksdb_merge", "capi-real"), ["verdict", "metric"]].to_list() == ["leak", "malloc_in_use_bytes"]
    assert decided.loc[("fd_leak", "leak"), ["verdict", "metric"]].to_list() == ["leak", "deleted_fds"]
    assert decided.loc[("dict_shrink", "dict"), ["verdict", "metric"]].to_list() == ["retention", "dict_size_bytes"]
    # the controls never leak; five passes cannot always rule out one step of RocksDB's own
    # (a background compaction's buffers in one replicate), which leaves a control undecided
    for variant in ("binding-real", "capi_fixed-real", "capi-dummy", "binding-dummy"):
        control = decided.loc[("rocksdb_merge", variant)]
        assert control["verdict"] in ("stable", "inconclusive"), variant
        assert control["growth_per_unit"] < control["leak_per_unit"], variant
    assert (decided.loc["rocksdb_merge", "verdict"] == "stable").sum() >= 3
    assert decided.loc[("fd_leak", "close"), "verdict"] == "stable"
    # confirmation: each duckdb_load run ended at its window (30 drops), was confirmed past it
    # or reached its horizon, and the tables say how far its verdict saw
    duck = growth[(growth["experiment"] == "duckdb_load") & (growth["profiler"] == "plain")]
    assert duck["confirmation"].map(lambda ended: set(ended.split(",")) <= {"window", "confirmed", "horizon"}).all()
    assert (duck["units_observed"] >= 30).all() and (decided["units_observed"].notna()).all()
    # RSS and USS of one run carry one verdict
    resident = growth[growth["metric"].isin(["rss_bytes", "uss_bytes"])]
    assert (resident.groupby(["experiment", "variant", "profiler"])["verdict"].nunique() == 1).all()


def test_comparisons_against_baselines(results):
    comparisons = pd.read_csv(results / "results" / "tables" / "comparisons.csv")
    row = comparisons.query("variant == 'capi-real' and metric == 'rss_bytes'").iloc[0]
    assert row["baseline"] == "binding-dummy"
    assert row["difference"] > 5e6
    assert set(comparisons["baseline"]) == {"binding-dummy", "rebuilt", "load_off", "close", "zero"}


def test_figures_exist_as_png_and_svg(results):
    """What each figure draws is tested in test_plots.py; here: every one is made, twice."""
    figures = results / "results" / "figures"
    names = [f"{kind}_{name}" for name in ("rocksdb_merge", "dict_shrink", "duckdb_load", "fd_leak", "planted")
             for kind in ("headline", "compare", "timeline")]
    names += [f"{kind}_{name}" for name in ("rocksdb_merge", "dict_shrink") for kind in ("heap", "top_sites")]
    for name in [*names, "growth_overview", "verdict_matrix", "attribution", "profiler_overhead", "time_to_verdict"]:
        assert (figures / f"{name}.png").stat().st_size > 10_000, name
        assert (figures / f"{name}.svg").read_text().lstrip().startswith("<?xml"), name


def test_rerun_when_up_to_date_does_nothing(root, results, capsys):
    """A no-op re-run and a dry run of the finished run, timed as `make bench` times them
    (it fails when either finds a job to do)."""
    from leaklab.commands import bench

    seconds = bench.bench_pipeline(results, root / "tests" / "config.yaml", run_first=False)
    assert list(seconds) == ["no-op re-run", "dry run after"]
    assert "dry run after: " in capsys.readouterr().out
    again = snakemake(root, results, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_lint_is_clean_but_for_conda(root):
    """The only lint left asks for conda or containers, which this project does not use
    (it installs a pinned venv and Debian packages instead)."""
    lint = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=root, capture_output=True, text=True)
    assert "Lints for rule run_experiment" in lint.stderr, lint.stderr  # the linter ran on every rule
    found = {line.strip()[2:] for line in (lint.stdout + lint.stderr).splitlines() if line.startswith("    * ")}
    assert found == {"Specify a conda environment or container for each rule.:"}


def test_native_profilers_name_the_merge_callback_for_capi_real_only(results):
    sites = pd.read_csv(results / "results" / "tables" / "top_sites.csv")
    sites = sites[(sites["experiment"] == "rocksdb_merge") & (sites["kind"] == "leaked")]
    for profiler in ("massif", "jemalloc", "heaptrack"):
        leaky = sites[(sites["profiler"] == profiler) & (sites["variant"] == "capi-real")]
        top = leaky.sort_values("rank").iloc[0]
        assert "FullMergeV2" in str(top["native_caller"]), (profiler, top.to_dict())
        assert "TimedFullMerge" in top["stack"]  # RocksDB's merge path, through libffi and ctypes
        assert top["bytes"] > 0.8 * 10_000 * 640  # at least one pass of merged values still live
        fixed = sites[(sites["profiler"] == profiler) & (sites["variant"] == "capi_fixed-real")]
        assert not fixed["native_caller"].fillna("").str.contains("FullMergeV2").any(), profiler


def test_profilers_agree_with_the_sampler_and_cost_is_measured(results):
    agreement = pd.read_csv(results / "results" / "tables" / "agreement.csv")
    leak = agreement.query("variant == 'capi-real' and profiler in ['massif', 'heaptrack']")
    assert len(leak) == 2 and leak["agrees"].all(), leak.to_string()
    overhead = pd.read_csv(results / "results" / "tables" / "profiler_overhead.csv")
    massif = overhead.query("profiler == 'massif'")["cpu_per_unit_ratio"]
    assert (massif > 3).all()  # valgrind is never cheap: a measured ratio, not a constant
    runs = pd.read_csv(results / "results" / "tables" / "runs.csv")
    assert set(runs.query("profiler != 'plain'")["profile_status"]) == {"ok"}
    for name in ("massif.out", "jemalloc.collapsed", "heaptrack.zst"):
        assert list((results / "results" / "runs" / "rocksdb_merge").glob(f"capi-real/*/rep1/{name}")), name


def test_tracemalloc_and_massif_see_the_retained_dict_table(results):
    timeline = pd.read_csv(results / "results" / "tables" / "heap_timeline.csv")
    traced = timeline.query("experiment == 'dict_shrink' and profiler == 'tracemalloc'")
    kept = traced[traced["variant"] == "dict"]["heap_bytes"].min()
    rebuilt = traced[traced["variant"] == "rebuilt"]["heap_bytes"].min()
    assert kept - rebuilt > 2 * 2**20  # the 60,000-entry table stays traced in `dict` only
    sites = pd.read_csv(results / "results" / "tables" / "top_sites.csv")
    left = sites.query("experiment == 'dict_shrink' and kind == 'leaked' and rank == 1").set_index(
        ["profiler", "variant"])["frame"]
    assert "dict_shrink.py" in left[("tracemalloc", "dict")]  # the line that filled the dict
    assert "new_keys_object" in left[("massif", "dict")]  # CPython's dict table, still held at the end
    assert "dict_shrink.py" not in left[("tracemalloc", "rebuilt")]
    assert "new_keys_object" not in left[("massif", "rebuilt")]


def test_visibility_says_what_each_profiler_can_see(results):
    visibility = pd.read_csv(results / "results" / "tables" / "visibility.csv")
    assert set(visibility["experiment"]) == {"rocksdb_merge", "dict_shrink", "duckdb_load", "fd_leak", "planted"}
    duck = visibility.query("experiment == 'duckdb_load'")
    assert duck["bundled_allocator"].all()  # DuckDB's wheel links its own jemalloc


def test_planted_controls_pass_and_give_the_sensitivity(results):
    controls = pd.read_csv(results / "results" / "tables" / "controls.csv").set_index("variant")
    assert controls["passed"].all(), controls.to_string()
    assert controls.loc["zero", "verdict"] == "stable"
    assert controls.loc["fragment", "verdict"] == "retention"
    assert controls.loc["native_large", "growth_per_unit"] == pytest.approx(4194304, rel=0.05)
    growth = pd.read_csv(results / "results" / "tables" / "growth.csv")
    assert growth["controls_passed"].all()
    summary = (results / "results" / "summary.md").read_text()
    assert "**Controls: passed** (5 planted variants)." in summary
    assert "| rocksdb_merge | capi-real | rss_bytes | **leak** |" in summary
    assert "| rocksdb_merge | capi-real | **leak** | malloc_in_use_bytes |" in summary  # the verdict per variant
    # sensitivity per experiment, in its own units, from leaks planted into its baseline
    sensitivity = pd.read_csv(results / "results" / "tables" / "sensitivity.csv").set_index(["experiment", "metric"])
    rocksdb = sensitivity.loc[("rocksdb_merge", "rss_bytes")]
    assert rocksdb["unit"] == "pass" and bool(rocksdb["detected_at_threshold"])
    assert rocksdb["smallest_detected"] <= rocksdb["leak_per_unit"]
    assert "- rocksdb_merge rss_bytes: threshold +256 KiB/pass caught" in summary


def test_attribution_puts_each_leak_in_its_layer(results):
    table = pd.read_csv(results / "results" / "tables" / "attribution.csv").fillna({"where": ""})
    where = {(r.experiment, r.variant, r.layer): r.where for r in table.itertuples()}
    assert where[("rocksdb_merge", "capi-real", "native heap")] == "grows here"
    assert where[("fd_leak", "leak", "kernel: deleted fds")] == "grows here"
    assert where[("fd_leak", "leak", "RSS (total)")] == ""  # nothing in RSS
    assert where[("dict_shrink", "dict", "Python heap")] == "retained here"
    assert where[("dict_shrink", "rebuilt", "Python heap")] == ""
    for name in ("verdict_matrix", "attribution"):
        assert (results / "results" / "figures" / f"{name}.png").stat().st_size > 20_000


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
WINDOW = {"width": 1400, "height": 1000}
# every mark a Vega scenegraph holds below its groups: a chart that drew nothing has none
COUNT_MARKS = """view => {
  const walk = mark => (mark.items || []).reduce((n, item) =>
      n + (mark.marktype === "group" ? 0 : 1) + (item.items || []).reduce((m, child) => m + walk(child), 0), 0);
  return walk(view.scenegraph().root);
}"""


@pytest.fixture(scope="module")
def report_page(root, results):
    """The run's report, made by ``leaklab report``, opened from disk in Debian's chromium
    in a 1400 x 1000 window; console errors and page errors are collected."""
    playwright = pytest.importorskip("playwright.sync_api")
    done = subprocess.run(
        [sys.executable, "-m", "leaklab", "report", "--directory", str(results),
         "--configfile", str(root / "tests" / "config.yaml")],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=WINDOW)
        errors = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        requests = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto((results / "results" / "report.html").as_uri(), wait_until="load")
        yield page, errors, requests
        browser.close()


def test_report_opens_on_every_variant_and_its_verdict(results, report_page):
    page, errors, requests = report_page
    verdicts = pd.read_csv(results / "results" / "tables" / "variant_verdicts.csv")
    summary = (results / "results" / "summary.md").read_text()
    rows = page.locator("#verdicts tbody tr")
    assert rows.count() == len(verdicts)
    assert rows.first.get_attribute("data-experiment") == "planted"  # the controls first
    for v in verdicts.itertuples():
        row = page.locator(f'#verdicts tr[data-experiment="{v.experiment}"][data-variant="{v.variant}"]')
        assert row.count() == 1, (v.experiment, v.variant)
        assert row.get_attribute("data-verdict") == v.verdict
        assert row.locator("td.verdict").inner_text().startswith(v.verdict)
        # the page and summary.md agree (summary.md may add the horizon the verdict covers)
        assert f"| {v.experiment} | {v.variant} | **{v.verdict}**" in summary
        assert row.is_visible()
    assert "passed" in page.locator("#controls").inner_text()
    text = page.locator("body").inner_text()
    for raw in ("[object Object]", "ENCODING", "ERRORS strict", "{{", "{%", "**", "<code>", "<p>"):
        assert raw not in text, raw  # nothing printed raw: docutils fields, template or Markdown syntax
    assert page.locator("#summary table").count() >= 1  # summary.md rendered, its tables as tables
    assert all(url.startswith(("file:", "data:", "about:")) for url in requests), requests  # offline
    assert not errors, errors


def test_report_shows_every_figure_whole(results, report_page):
    page, errors, _ = report_page
    figures = page.locator("figure")
    names = sorted(p.stem for p in (results / "results" / "figures").glob("*.png"))
    assert sorted(f.removeprefix("fig-") for f in figures.evaluate_all("els => els.map(e => e.id)")) == names
    nav = page.locator("nav").bounding_box()["height"]
    for i in range(figures.count()):
        figure = figures.nth(i)
        figure.evaluate("el => el.scrollIntoView({block: 'start'})")
        image = figure.locator("img")
        assert image.evaluate("img => img.complete && img.naturalWidth > 0"), figure.get_attribute("id")
        box, title = image.bounding_box(), figure.locator("h3").bounding_box()
        assert nav <= title["y"] < box["y"] < WINDOW["height"], figure.get_attribute("id")  # its top in view
        assert box["x"] >= 0 and box["x"] + box["width"] <= WINDOW["width"], figure.get_attribute("id")
    # a figure reached from the landing table's link starts below the bar, not under it
    link = page.locator("#verdicts a[href^='#fig-headline_']").first
    link.click()
    target = page.locator(link.get_attribute("href"))
    assert nav <= target.bounding_box()["y"] < WINDOW["height"] / 2
    assert not errors, errors


def test_report_interactive_charts_render(report_page):
    page, errors, _ = report_page
    charts = page.locator(".vega-target")
    assert charts.count() >= 10  # per experiment: its units and its RSS; the sites of profiled ones
    for i in range(charts.count()):
        chart = charts.nth(i)
        chart.scroll_into_view_if_needed()
        page.wait_for_function("el => el.dataset.drawn === 'true'", arg=chart.element_handle(), timeout=20_000)
    counts = page.evaluate(f"() => window.leaklabViews.map({COUNT_MARKS})")
    assert len(counts) == charts.count() and min(counts) > 0, counts
    sites = page.locator(".chart[id^='chart-explore_sites-']")
    assert sites.count() >= 1
    # hovering a time series names the nearest run's reading
    canvas = page.locator(".chart[id^='chart-explore_samples-'] canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5)
    tooltip = page.locator("#vg-tooltip-element")
    tooltip.wait_for(state="visible", timeout=10_000)
    assert "RSS (MiB)" in tooltip.inner_text() and "undefined" not in tooltip.inner_text()
    assert not errors, errors


def job_counts(output: str) -> dict[str, int]:
    """The "Job stats" table of a snakemake run or dry run: rule -> number of jobs."""
    lines = output.split("Job stats:", 1)[1].splitlines()[3:] if "Job stats:" in output else []
    counts = {}
    for line in lines:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def changed_config(root, directory, change) -> str:
    config = yaml.safe_load((root / "tests" / "config.yaml").read_text())
    change(config)
    path = directory / "changed.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


ANALYSIS_JOBS = {"aggregate", "plot_growth_overview", "plot_profiler_overhead", "plot_profiles", "plot_experiment",
                 "summary", "all"}
MEASUREMENT_JOBS = {"run_experiment", "rocksdb_fixture", "command_setup"}


@pytest.mark.parametrize("change, measured", [
    (lambda c: c["experiments"]["fd_leak"].update(warmup_units=6), set()),
    (lambda c: c["experiments"]["fd_leak"].update(verdict={"deleted_fds": {"leak_per_unit": 2, "retained": 16}}),
     set()),
    (lambda c: c["experiments"]["fd_leak"]["params"].update(rotations=61), {"fd_leak"}),
    (lambda c: c["sampler"].update(interval_s=0.03), "all"),
])
def test_what_reruns_when_the_config_changes(root, results, tmp_path, change, measured):
    """Warm-ups and thresholds re-run the analysis only; an experiment's parameters re-run
    its own measurements; sampler settings re-run every measurement."""
    done = snakemake(root, results, "--configfile", changed_config(root, tmp_path, change), "-n")
    assert done.returncode == 0, done.stderr[-3000:]
    counts = job_counts(done.stdout + done.stderr)
    assert ANALYSIS_JOBS <= set(counts)
    output = done.stdout + done.stderr
    reran = {line.split("/")[2] for line in output.splitlines() if line.strip().startswith("output: results/runs/")}
    runs = pd.read_csv(results / "results" / "tables" / "runs.csv")
    if measured == "all":
        assert counts["run_experiment"] == len(runs)
    else:
        assert reran == measured
        assert counts.get("run_experiment", 0) == len(runs[runs["experiment"].isin(measured)])


def test_a_threshold_change_reruns_the_analysis_and_never_a_measurement(root, results, tmp_path):
    """Every result follows its inputs: a new threshold re-runs aggregate and what follows
    it, no run, and changes the verdict it governs.  Snakemake's plan shows every figure
    going again; the run itself stops at the summary (drawing the 21 figures again proves
    nothing the first run did not, and costs about 80 s of CPU).  Last in this module: it changes the
    results in place (a copy elsewhere would re-run the runs, whose params hold absolute
    paths).  The changed config is re-serialised with sorted keys: order alone changes nothing.
    The threshold is rocksdb_merge's own: a run that confirms its verdict beyond its window
    (duckdb_load's) is measured to its verdict, so its own thresholds are part of its params."""
    metas = {p: p.stat().st_mtime_ns for p in (results / "results" / "runs").glob("*/*/*/rep*/meta.json")}
    config = changed_config(root, tmp_path, lambda c: c["experiments"]["rocksdb_merge"].update(
        verdict={"rss_bytes": {"leak_per_unit": 64 * 2**20, "retained": 4194304}}))
    before = verdict(pd.read_csv(results / "results" / "tables" / "growth.csv"), "rocksdb_merge", "capi-real",
                     "rss_bytes")
    plan = snakemake(root, results, "--configfile", config, "-n")
    assert plan.returncode == 0, plan.stderr[-4000:]
    counts = job_counts(plan.stdout + plan.stderr)
    assert counts["aggregate"] == 1 and counts["summary"] == 1 and counts["plot_experiment"] == 5
    assert not set(counts) & MEASUREMENT_JOBS, counts
    # the plan's figures were drawn by the first run; what changes is the verdict, in the tables
    done = snakemake(root, results, "results/summary.md", "--configfile", config)
    assert done.returncode == 0, done.stderr[-4000:]
    counts = job_counts(done.stdout + done.stderr)
    assert counts["aggregate"] == 1 and counts["summary"] == 1
    assert not set(counts) & MEASUREMENT_JOBS, counts
    assert {p: p.stat().st_mtime_ns for p in metas} == metas  # no measurement re-ran
    after = verdict(pd.read_csv(results / "results" / "tables" / "growth.csv"), "rocksdb_merge", "capi-real",
                    "rss_bytes")
    assert before["verdict"] == "leak" and after["verdict"] == "stable", after["verdict_reason"]
    assert after["growth_per_unit"] == before["growth_per_unit"]  # same measurements, another bar
    assert after["leak_per_unit"] == 64 * 2**20
