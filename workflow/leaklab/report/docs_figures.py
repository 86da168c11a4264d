"""The figures the README shows: copies of a real run's figures, small enough to commit.

``make figures-docs`` (``python -m leaklab.report.docs_figures``) takes figures a pipeline run
drew in ``results/figures/``, scales them down to ``WIDTH_PX`` (the README shows them at
that width; the run's own PNGs are for print), and writes ``docs/figures.md`` saying
which run they came from: when it measured (the newest ``meta.json``) and on which
machine (the host each run records).  Nothing is drawn here, so the README can only
show what a run really measured.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image

FIGURES = ("growth_overview", "attribution")
WIDTH_PX = 620
GIB = 2**30


class DocsError(RuntimeError):
    """The results directory cannot give the README's figures."""


def run_stamp(results: Path) -> str:
    """``2026-11-23 18:40 UTC on vm (Linux 6.18.44, 2 CPUs, 23.5 GiB)``: the newest run's
    time and its host, from the run directories' ``meta.json``."""
    metas = sorted(results.glob("runs/*/*/*/rep*/meta.json"), key=lambda p: p.stat().st_mtime)
    if not metas:
        raise DocsError(f"no run in {results}/runs: run the pipeline first (make run)")
    newest = metas[-1]
    host = json.loads(newest.read_text()).get("host") or {}
    when = datetime.fromtimestamp(newest.stat().st_mtime, tz=timezone.utc)
    memory = host.get("mem_total_bytes")
    machine = ", ".join(part for part in (f"Linux {host['kernel']}" if host.get("kernel") else "",
                                          f"{host['cpus']} CPUs" if host.get("cpus") else "",
                                          f"{memory / GIB:.1f} GiB" if memory else "") if part)
    return f"{when:%Y-%m-%d %H:%M} UTC on {host.get('hostname', 'an unrecorded host')} ({machine})"


def shrink(source: Path, target: Path, width: int = WIDTH_PX) -> tuple[int, int]:
    """``source`` scaled to ``width`` pixels (never enlarged), as an optimised PNG."""
    with Image.open(source) as image:
        image = image.convert("RGB")
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
        return image.size


def make(results: Path, out: Path, figures=FIGURES) -> list[Path]:
    """Copy ``figures`` from ``results/figures`` into ``out`` and write ``out/figures.md``."""
    missing = [name for name in figures if not (results / "figures" / f"{name}.png").exists()]
    if missing:
        raise DocsError(f"{results}/figures has no {', '.join(f'{m}.png' for m in missing)}: "
                        f"run the pipeline first (make run)")
    stamp = run_stamp(results)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in figures:
        target = out / f"{name}.png"
        shrink(results / "figures" / f"{name}.png", target)
        written.append(target)
    lines = [f"Figures of the run of {stamp}, copied from `results/figures/` by `make figures-docs`:", ""]
    lines += [f"- `{p.name}`" for p in written]
    (out / "figures.md").write_text("\n".join(lines) + "\n")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"), help="the run's results directory")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="where the README's figures go")
    parser.add_argument("--figures", nargs="+", default=list(FIGURES), help="figure names in results/figures")
    args = parser.parse_args(argv)
    try:
        written = make(args.results, args.out, args.figures)
    except DocsError as error:
        print(f"figures-docs: {error}", file=sys.stderr)
        return 1
    print(f"wrote {', '.join(str(p) for p in written)}; {(args.out / 'figures.md').read_text().splitlines()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
