"""Sequential stopping: a plain run ends as soon as its verdict is decided.

The runner hands every sample it takes to a :class:`Watcher`, which follows the run's
marks (``marks.jsonl``) as they arrive.  Each time the number of units after the
warm-up reaches one of the looks fixed before the run (``sequential.looks`` between
``min_units`` and the configured length), the run's series so far is judged alone, by
the same rule as the tables, at each look's ``1 - 0.05/K`` confidence
(``sequential.RunSeries``, Bonferroni over the K looks: the chance that any look gives
a wrong decisive interval stays at most 5 %).  A metric is decided at its first decisive
look (``sequential.decisive``: a leak only with the checks on the window's halves); the
run is decided when its variant verdict is (``sequential.variant_decision``: a leak on
any deciding metric, or every deciding metric decided) and that verdict is one that may
end a run (``stop_on``; by default not ``stable``, which would speak for units the run
never ran).  The runner then asks
the program to stop (``request_stop``): the run keeps its final sample, its marks and
its files, and ``meta.json`` says why and where it stopped.

Only plain runs are watched: a profiled run's RSS holds the profiler's own memory and
its rows are never judged, so there is no verdict to reach early; its length comes
from its purpose instead (``leaklab.measure.config.profiled_length``).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from leaklab.process import unit_protocol
from leaklab.measure.config import DEFAULT_STOP_ON
from leaklab.model.settings import ExperimentSettings, deciding_metrics, family_leaders, from_params

# The verdict model (growth, horizon, sequential, verdicts: scipy) is imported where a
# watched run first needs it, not here: every run's job imports the runner, and most
# runs are not watched; the import cost each of them 1.4 s of CPU while it
# holds the pipeline's one CPU-bound measuring slot.

STOP_SIGNAL = signal.SIGTERM
# After the stop signal, how long a program may take to finish its unit and exit before
# it is killed (its marks and samples so far are kept either way).
STOP_GRACE_S = 30.0
# Exit statuses of a program that ended because it was asked to: 0 (it caught the
# signal), killed by the signal, or a shell's 128 + signal.
STOPPED_EXITS = frozenset({0, -STOP_SIGNAL, -signal.SIGKILL, 128 + STOP_SIGNAL})


@dataclass(frozen=True)
class Plan:
    """What the runner needs to stop one run early: the experiment's analysis settings,
    its configured length (the maximum) and the first look after the warm-up."""

    settings: ExperimentSettings
    max_units: int
    min_units: int
    stop_on: tuple[str, ...] = DEFAULT_STOP_ON
    sequential: bool = True
    window_units: int | None = None  # set: confirmation, max_units is then the horizon
    confirm_leak: bool | str = False  # True: a leak waits for the first look past the window; "horizon": for the horizon

    def holds_leak(self, look: int) -> bool:
        """Whether a leak at ``look`` still waits for a later look (``confirm.leak``): with
        ``true`` until the first look past the window, with ``horizon`` until the horizon,
        so that a climb which levels off late (DuckDB 1.2.2's heap after ~14,000 dropped
        tables) is stopped only once its recent rate is seen below the bar."""
        if self.confirm_leak == "horizon":
            return look < self.max_units
        return bool(self.confirm_leak) and look <= self.window

    @property
    def window(self) -> int:
        """The unit at which the configured length ends (the horizon's start)."""
        return self.window_units if self.window_units is not None else self.max_units

    @property
    def looks(self) -> list[int]:
        """Units after the warm-up at which the run is judged within its window, fixed
        before it starts (with confirmation, the window's end is the first confirming look)."""
        if not self.sequential:
            return []
        from leaklab.model import sequential

        found = sequential.looks(max(1, self.window - self.settings.warmup_units), self.min_units)
        return found[:-1] if self.window_units is not None else found

    @property
    def confirm_looks(self) -> list[int]:
        """Units (counted from the start) at which a run beyond its window is judged
        again: the window's end, then 1.5 times as many units after the warm-up each
        time, and the horizon (``horizon.confirm_looks``)."""
        if self.window_units is None:
            return []
        from leaklab.model import horizon

        return horizon.confirm_looks(self.window, self.max_units, self.settings.warmup_units)

    @classmethod
    def from_params(cls, data: dict | None) -> "Plan | None":
        """The plan a rule's ``params.stopping`` carries (``leaklab.measure.config.stop_plan``); None: not watched."""
        if not data:
            return None
        settings = from_params({data["settings"]["name"]: data["settings"]})[data["settings"]["name"]]
        window = data.get("window_units")
        return cls(settings, int(data["max_units"]), int(data["min_units"]), tuple(data["stop_on"]),
                   sequential=bool(data.get("sequential", True)),
                   window_units=None if window is None else int(window),
                   confirm_leak=data.get("confirm_leak", False))


class Watcher:
    """Follows a run's marks and says when its verdict is decided.

    ``parse`` checks one line of ``marks.jsonl`` (the runner's own checker: the program
    writes there, so a line is untrusted); a line it refuses is skipped here and counted
    when the runner reads the file at the end."""

    def __init__(self, plan: Plan, marks_path: os.PathLike, parse: Callable[[bytes], dict]):
        from leaklab.model import sequential

        self.plan, self.marks_path, self.parse = plan, marks_path, parse
        self.looks = plan.looks
        self.confirm_looks = plan.confirm_looks
        self.confidence = sequential.look_confidence(max(1, len(self.looks)))
        self.confirm_confidence = sequential.look_confidence(max(1, len(self.confirm_looks)))
        self.offset = 0
        self.records: list[dict] = []
        self.next_look = 0
        self.next_confirm = 0
        self.stop_verdicts: dict[str, str] = {}
        self.decided: dict | None = None  # verdict, unit and t of the deciding look, why, whether it was the last

    def _read_new(self) -> None:
        from leaklab.model import growth

        lines, self.offset = unit_protocol.read_complete_lines(self.marks_path, self.offset)
        for line in lines:
            try:
                record = self.parse(line) if line.strip() else None
            except ValueError:
                continue
            if record and record["unit"] is not None and record["phase"] in growth.BOUNDARY_PHASES:
                self.records.append(record)

    def update(self, samples: list[dict]) -> dict | None:
        """Read the marks that arrived; at a new look, judge the run so far.  Returns the
        decision (``verdict``, ``unit``: the look's last unit, ``t``, ``reason``) once there is one."""
        if self.decided is not None:
            return self.decided
        self._read_new()
        if self.next_look < len(self.looks):
            warmup = self.plan.settings.warmup_units
            n_post = len({r["unit"] for r in self.records if r["unit"] > warmup})
            if n_post < self.looks[self.next_look]:
                return None
            while self.next_look + 1 < len(self.looks) and n_post >= self.looks[self.next_look + 1]:
                self.next_look += 1  # marks arrived faster than the polls: judge the latest look reached
            self._judge(self.looks[self.next_look], samples)
            self.next_look += 1
        elif self.next_confirm < len(self.confirm_looks) and self.records:
            last = max(r["unit"] for r in self.records)
            if last < self.confirm_looks[self.next_confirm]:
                return None
            while self.next_confirm + 1 < len(self.confirm_looks) and last >= self.confirm_looks[self.next_confirm + 1]:
                self.next_confirm += 1
            self._confirm(self.confirm_looks[self.next_confirm], samples)
            self.next_confirm += 1
        return self.decided

    def cuts_short(self) -> bool:
        """Whether the decision came before the last look: at the last one (the
        configured length, or the horizon) the program is ending anyway and is not signalled."""
        return self.decided is not None and not self.decided["last"]

    def _series(self, samples: list[dict]) -> tuple[pd.DataFrame, list[str]]:
        from leaklab.model import growth

        series = growth.unit_series(pd.DataFrame(samples), pd.DataFrame(self.records))
        present = [m for m in deciding_metrics(self.plan.settings) if m in series and series[m].notna().any()]
        return series, family_leaders(present)  # as in the tables: USS follows RSS

    def _judge(self, n: int, samples: list[dict]) -> None:
        from leaklab.model import sequential
        from leaklab.model.verdicts import DECISION_FRACTION

        series, metrics = self._series(samples)
        s = self.plan.settings
        t_look = None
        for metric in metrics:
            if self.stop_verdicts.get(metric, "inconclusive") != "inconclusive":
                continue  # decided at an earlier look: its first decisive look stands
            run = sequential.RunSeries(series[["unit", "t", metric]].rename(columns={metric: "value"}), s, metric)
            if len(run) < n:
                self.stop_verdicts[metric] = "inconclusive"  # not measured at every unit: never decides
                continue
            judgement = run.judge(n, self.confidence)
            bar = DECISION_FRACTION * s.thresholds[metric].leak_per_unit
            self.stop_verdicts[metric] = judgement.verdict if sequential.decisive(judgement, bar) else "inconclusive"
            t_look = float(run.t[n - 1])
            unit_look = int(run.x[n - 1])
        verdict = sequential.variant_decision(self.stop_verdicts)
        if verdict in self.plan.stop_on and t_look is not None:
            last = not self.confirm_looks and n >= self.looks[-1]
            self.decided = {"verdict": verdict, "unit": unit_look, "t": t_look, "look": n,
                            "metrics": dict(self.stop_verdicts), "reason": "decided", "last": last}

    def _confirm(self, look: int, samples: list[dict]) -> None:
        """A look at or beyond the window's end (unit ``look``): the run is decided when
        no deciding metric's verdict depends on what follows (``horizon.pending``), or
        when one of them is a confirmed leak (nothing can override it)."""
        from leaklab.model import horizon, sequential
        from leaklab.model.verdicts import DECISION_FRACTION, VERDICTS

        series, metrics = self._series(samples)
        s, plan = self.plan.settings, self.plan
        found, waiting, t_look, unit_look = {}, [], None, None
        for metric in metrics:
            run = sequential.RunSeries(series[["unit", "t", metric]].rename(columns={metric: "value"}), s, metric)
            n = int((run.x <= look).sum())
            if n == 0:
                waiting.append(metric)
                continue
            judgement = run.judge(n, self.confirm_confidence)
            found[metric] = judgement.verdict
            bar = DECISION_FRACTION * s.thresholds[metric].leak_per_unit
            if horizon.pending(judgement, bar, confirm_leak=plan.holds_leak(look)):
                waiting.append(metric)
            t_look, unit_look = float(run.t[n - 1]), int(run.x[n - 1])
        self.stop_verdicts = found
        settled = {m: v for m, v in found.items() if m not in waiting}
        if t_look is None or not settled or (waiting and "leak" not in settled.values()):
            return
        verdict = "leak" if waiting else min(settled.values(), key=VERDICTS.index)
        self.decided = {"verdict": verdict, "unit": unit_look, "t": t_look, "look": look, "metrics": found,
                        "reason": "window" if look <= plan.window else "confirmed",
                        "last": look >= self.confirm_looks[-1]}


def request_stop(pid: int, own_final_sample: bool) -> None:
    """Ask the measured program to end: the process group gets ``STOP_SIGNAL``.  A
    built-in experiment (``own_final_sample``) catches it, ends after the unit in progress
    and takes its final sample through the marks' handshake; any other program (a
    user's, the Go and C++ ones) ends as the signal's default action says, its final
    sample taken by the runner just before."""
    try:
        if own_final_sample:
            os.kill(pid, STOP_SIGNAL)  # the experiment itself: its own children are its business
        else:
            os.killpg(pid, STOP_SIGNAL)  # a shell and the program it runs alike
    except ProcessLookupError:
        pass
