"""Unit alignment and the robust slope, on synthetic series with known slopes."""

import math

import numpy as np
import pandas as pd
import pytest

from leaklab.model import growth


def series(slope: float, units: int = 10, level: float = 50e6, noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    unit = np.arange(units + 1)
    return pd.DataFrame({"unit": unit, "rss_bytes": level + slope * unit + rng.normal(0, noise, unit.size)})


@pytest.mark.parametrize("slope", [0.0, 2e6, 3.2e7])
def test_slope_recovers_known_growth_despite_noise_and_an_outlier(slope):
    frame = series(slope, units=20, noise=1e5, seed=3)
    frame.loc[7, "rss_bytes"] += 5e7  # one page-cache hiccup must not make a leak
    assert growth.slope_per_unit(frame["unit"], frame["rss_bytes"]) == pytest.approx(slope, abs=2e5)
    assert math.isnan(growth.slope_per_unit(frame["unit"][:2], frame["rss_bytes"][:2]))


def test_unit_series_takes_the_last_sample_at_or_before_each_mark():
    samples = pd.DataFrame({
        "t": [0.0, 0.5, 1.0, 1.5, 2.0],
        **{m: [0] * 5 for m in growth.OUTSIDE_METRICS},
    })
    samples["uss_bytes"] = [10, 20, 30, 40, 50]
    marks = pd.DataFrame({
        "t": [0.1, 1.2, 1.3, 2.1], "unit": pd.array([0, 1, None, 2], dtype="Int64"),
        "phase": ["start", "unit", "filled", "unit"], "rss_bytes": [1, 2, 3, 4],
    })
    frame = growth.unit_series(samples, marks)
    assert frame["unit"].tolist() == [0, 1, 2]
    assert frame["rss_bytes"].tolist() == [1, 2, 4]  # read by the process at the mark
    assert frame["uss_bytes"].tolist() == [10, 30, 50]  # the sampler's last reading before it
