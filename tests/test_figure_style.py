"""One look and one way of writing numbers on every figure: the verdict palette, the
threshold line, units that agree with their count, axes in the unit their values need."""

from leaklab.model.amounts import amount, counted, plural
from leaklab.report import compare_plots, summary
from leaklab.report.figstyle import THRESHOLD_STYLE, VERDICT_COLOURS, axis_unit
from test_plots import MIB, units_for


def test_one_verdict_palette_and_threshold_style_everywhere():
    assert set(VERDICT_COLOURS) == {"leak", "settling", "retention", "stable", "inconclusive"}
    assert len(set(VERDICT_COLOURS.values())) == 5 and THRESHOLD_STYLE["linestyle"] == "--"


def test_change_since_warmup_starts_each_run_at_zero():
    units = units_for("fd_leak", "leak", "slab_bytes", {1: [100, 110, 120, 130], 2: [5000, 5010, 5030, 5040]})
    change = compare_plots.change_since_warmup(units, warmup=1)
    assert list(change[change["replicate"] == 2]["change"]) == [-10, 0, 20, 30]
    assert list(change[change["replicate"] == 1]["change"]) == [-10, 0, 10, 20]


def test_units_agree_and_numbers_are_never_scientific():
    assert [plural(u) for u in ("pass", "cycle", "entry", "day", "box")] == ["passes", "cycles", "entries", "days",
                                                                            "boxes"]
    assert counted(1, "pass") == "1 pass" and counted(12, "pass") == "12 passes"
    assert amount(-1020 * 1024, "x_bytes", "+.3g") == "-1020 KiB"
    assert amount(123456, "deleted_fds") == "123000" and summary.rate(-1020 * 1024, "x_bytes", "cycle") == \
        "-1020 KiB/cycle"


def test_each_axis_is_drawn_in_the_unit_its_values_need():
    assert axis_unit("rss_bytes", [0, 3 * 1024, 60 * 1024]) == (1024, "KiB")
    assert axis_unit("rss_bytes", [0, -3 * MIB]) == (MIB, "MiB")
    assert axis_unit("deleted_fds", [1e6]) == (1.0, "")
