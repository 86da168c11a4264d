"""leaklab's command line: ``leaklab <verb> [options]`` (declared in pyproject.toml).

One module per kind of verb, as memray's ``commands/`` does: ``pipeline`` holds the
verbs that run the Snakemake workflow (run, sweep, report); the others hand their
arguments to the module that has always done the work, so ``python -m leaklab nightly``
and the like keep working.  ``python -m leaklab <verb>`` is the same without the
installed script.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from leaklab.commands import pipeline


def _nightly(argv: list[str]) -> int:
    from leaklab.commands import nightly

    return nightly.main(argv)


def _bench(argv: list[str]) -> int:
    from leaklab.commands import bench

    bench.main(argv)
    return 0


def _measure(argv: list[str]) -> int:
    from leaklab.measure import runner

    return runner.main(argv)


def _lock(argv: list[str]) -> int:
    from leaklab.commands import lock

    return lock.main(argv)


# verb -> (what it does, the function that does it with the rest of the arguments)
VERBS: dict[str, tuple[str, Callable[[list[str]], int]]] = {
    "run": ("the whole pipeline (snakemake options pass through, e.g. --config only=[my_exp])", pipeline.run),
    "nightly": ("fresh measurements appended to the history store; fails on a regression", _nightly),
    "sweep": ("the version sweep (config: version_sweep)", pipeline.sweep),
    "report": ("the HTML report of the last run, opening on its findings", pipeline.report),
    "measure": ("one variant under one profiler, outside Snakemake (leaklab.measure.runner)", _measure),
    "bench": ("the sampler's overhead on the measured process", _bench),
    "lock": ("clear Snakemake's lock when the pipeline that held it is dead", _lock),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="leaklab", description="Prove, measure and explain memory leaks in long-running processes.",
        epilog="verbs:\n" + "\n".join(f"  {verb:<9} {what}" for verb, (what, _) in VERBS.items())
        + "\n\n`leaklab <verb> --help` for a verb's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("verb", choices=list(VERBS), metavar="verb")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the verb's own options")
    args = parser.parse_args(argv)
    return VERBS[args.verb][1](args.args)


if __name__ == "__main__":
    sys.exit(main())
