"""Figures draw what they say they draw."""

import pandas as pd

from leaklab import plots


def test_timeline_draws_plain_runs_only(tmp_path, monkeypatch):
    """Under a profiler RSS includes the profiler itself: mixing it in would draw a
    profiled replicate and a plain one as one zigzag line."""
    drawn = []
    real = plots.sns.lineplot
    monkeypatch.setattr(plots.sns, "lineplot", lambda data, **kw: drawn.append(data) or real(data=data, **kw))
    keys = {"experiment": "fd_leak", "variant": "leak", "replicate": 1}
    samples = pd.DataFrame([{**keys, "profiler": p, "t": t, "rss_bytes": rss}
                            for p, rss in (("plain", 15e6), ("heaptrack", 180e6)) for t in (0.0, 1.0)])
    units = pd.DataFrame([{**keys, "profiler": p, "unit": u, "t": u, "metric": "deleted_fds", "value": v}
                          for p, v in (("plain", 1.0), ("heaptrack", 99.0)) for u in (1, 2)])
    plots.timeline(samples, units, "fd_leak", tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 10_000
    assert all(set(frame["profiler"]) == {"plain"} for frame in drawn)
    assert drawn[0]["rss"].max() < 20  # MiB: the plain run, not heaptrack's 180 MB
