"""``results/report.html``: the run's report, one self-contained page that opens offline.

leaklab writes the page itself rather than through Snakemake's report, whose first page is
the workflow's graph and whose metadata fields cannot hold a table: the page opens on the
findings (``leaklab.report.landing``), renders ``summary.md``, and then gives each experiment its
own section with its figures (PNG, embedded), its interactive charts (``leaklab.report.explore``,
Vega-Lite with the Vega libraries inlined) and every item's own title and caption
(``workflow/report/captions.yaml``); the tables follow, small ones as sortable HTML and
large ones linked (they sit beside the page in ``results/tables``), and last how the run
was configured.  Figures are whole in a 1400 x 1000 window: they keep their aspect ratio,
no wider than the page, and a tall one scrolls with the page.
"""

from __future__ import annotations

import base64
import html
import json
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import markdown
import pandas as pd
import yaml
from jinja2 import Environment, FileSystemLoader, select_autoescape

from leaklab.report import explore, landing
from leaklab.tables.tables import read_csv_table

INLINE_ROWS = 300  # a table longer than this is linked, not written into the page
PACKAGES = ("snakemake", "pandas", "duckdb", "matplotlib", "seaborn", "altair", "vl-convert-python")
VEGA_LITE_VERSION = "6.4"  # the Vega-Lite version Altair writes (alt.SCHEMA_VERSION v6.4.x)
# Figures drawn for the whole run, by section, in reading order
OVERVIEW = ("verdict_matrix", "attribution", "growth_overview", "cross_language")
METHOD = ("profiler_overhead", "time_to_verdict", "accuracy", "version_sweep", "nightly_trend")
# an experiment's figures, in reading order (kinds not listed come after them)
EXPERIMENT_KINDS = ("headline", "compare", "timeline", "heap", "top_sites")
CAPTION_OF = {"heap": "heap_timeline", "nightly_trend": "regressions"}


@dataclass
class Item:
    """One figure or chart of the page, with its own anchor, title and caption."""
    anchor: str
    title: str
    caption: str
    png: str = ""           # data URI of an embedded figure
    svg: str = ""           # the figure's SVG, relative to the page
    spec: str = ""          # a Vega-Lite specification (JSON) of an interactive chart


@dataclass
class Section:
    anchor: str
    title: str
    items: list[Item] = field(default_factory=list)
    intro: str = ""


def split_figure_name(name: str, experiments: list[str]) -> tuple[str, str | None]:
    """``headline_rocksdb_merge`` -> (``headline``, ``rocksdb_merge``); a run-wide figure
    has no experiment.  The longest experiment name that ends the name wins."""
    for experiment in sorted(experiments, key=len, reverse=True):
        if name.endswith(f"_{experiment}"):
            return name[: -len(experiment) - 1], experiment
    return name, None


def _inline_markdown(text: str) -> str:
    rendered = markdown.markdown(text)
    return rendered.removeprefix("<p>").removesuffix("</p>")


def _caption(captions: dict, kind: str, group: str = "figures", **fields) -> tuple[str, str]:
    entry = captions[group].get(CAPTION_OF.get(kind, kind))
    if entry is None:
        raise KeyError(f"no caption for {group} {kind!r}: add it to workflow/report/captions.yaml")
    return entry["title"].format(**fields), _inline_markdown(entry["caption"].format(**fields))


def figure_item(png: Path, captions: dict, kind: str, **fields) -> Item:
    title, caption = _caption(captions, kind, **fields)
    svg = png.with_suffix(".svg")
    return Item(anchor=f"fig-{png.stem}", title=title, caption=caption,
                png="data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii"),
                svg=f"figures/{svg.name}" if svg.exists() else "")


def chart_item(spec: dict | None, captions: dict, kind: str, experiment: str, **fields) -> Item | None:
    if spec is None:
        return None
    title, caption = _caption(captions, kind, "interactive", experiment=experiment, **fields)
    return Item(anchor=f"chart-{kind}-{experiment}", title=title, caption=caption,
                spec=json.dumps(spec, separators=(",", ":"), allow_nan=False).replace("</", "<\\/"))


def table_html(frame: pd.DataFrame, name: str) -> str:
    """A sortable HTML table (the page's script sorts on a header click)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{'' if pd.isna(v) else html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f'<table class="sortable data" id="table-{name}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def build(*, tables: dict[str, Path], figures: list[Path], summary_md: Path, captions_path: Path,
          template_path: Path, experiments: dict[str, dict], config: dict, vega_js: str) -> str:
    """The page's HTML.  ``experiments`` maps each configured experiment, in order, to its
    ``unit`` and ``warmup_units``; ``tables`` each table's name to its CSV (beside the page
    in ``results/tables``); ``figures`` the PNGs of the run."""
    captions = yaml.safe_load(captions_path.read_text())
    read = {name: read_csv_table(path) for name, path in tables.items()}
    names = list(experiments)
    by_experiment: dict[str, dict[str, Path]] = {name: {} for name in names}
    run_wide: dict[str, Path] = {}
    for png in figures:
        kind, experiment = split_figure_name(png.stem, names)
        (by_experiment[experiment] if experiment else run_wide)[kind] = png

    page = landing.build(read["variant_verdicts"], read["growth"], read["runs"], read["controls"],
                         read["attribution"], {n: e["warmup_units"] for n, e in experiments.items()},
                         {n: [(split_figure_name(p.stem, names)[0], f"fig-{p.stem}") for p in _ordered(figs)]
                          + [("explore", f"chart-explore_units-{n}")] for n, figs in by_experiment.items()})

    sections = [Section("across", "Across experiments",
                        [figure_item(run_wide[k], captions, k) for k in OVERVIEW if k in run_wide])]
    for name, entry in experiments.items():
        fields = {"experiment": name, "unit": entry["unit"]}
        items = [figure_item(png, captions, split_figure_name(png.stem, names)[0], **fields)
                 for png in _ordered(by_experiment[name])]
        charts = [
            chart_item(explore.units_chart(read["units"], name, entry["unit"]), captions, "explore_units", **fields),
            chart_item(explore.samples_chart(read["samples"], name), captions, "explore_samples",
                       points=explore.MAX_POINTS, **fields),
            chart_item(explore.sites_chart(read["site_timeline"], name), captions, "explore_sites", **fields)
            if "site_timeline" in read and not read["site_timeline"].empty else None,
        ]
        sections.append(Section(f"exp-{name}", name, items + [c for c in charts if c is not None]))
    sections.append(Section("method", "Profilers and time",
                            [figure_item(run_wide[k], captions, k) for k in METHOD if k in run_wide]))

    small, linked = {}, {}
    for name, path in tables.items():
        frame = read[name]
        if len(frame) <= INLINE_ROWS:
            small[name] = table_html(frame, name)
        else:
            linked[name] = {"rows": len(frame), "mib": path.stat().st_size / 2**20}
    env = Environment(loader=FileSystemLoader(template_path.parent), autoescape=select_autoescape(["html", "jinja"]))
    return env.get_template(template_path.name).render(
        landing=page, sections=sections, summary_html=markdown.markdown(summary_md.read_text(), extensions=["tables"]),
        summary_caption=_inline_markdown(captions["summary"]), tables_caption=_inline_markdown(captions["tables"]),
        small_tables=small, linked_tables=linked, config_yaml=yaml.safe_dump(config, sort_keys=False),
        versions=_versions(), vega_js=vega_js,
    )


def _ordered(figures: dict[str, Path]) -> list[Path]:
    """An experiment's figures in reading order: the known kinds first, then the rest."""
    rank = {kind: i for i, kind in enumerate(EXPERIMENT_KINDS)}
    return [figures[k] for k in sorted(figures, key=lambda k: (rank.get(k, len(rank)), k))]
