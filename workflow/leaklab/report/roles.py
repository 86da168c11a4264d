"""What each variant of a built-in story stands for, and the verdict its story predicts.

The report's landing page sets the observed verdict beside the expected one, so a reader
sees at once whether a story reproduced: the ``bug`` variant is the leak or retention
the story is about, ``fix`` the same work with the story's fix, ``control`` a variant
that exercises the same machinery without the faulty path (a dummy merge operator, no
load, a planted leak of known size).  The expectations come from the stories' sources
(the original reproductions, the fixing pull requests; see the README's stories) and,
for ``planted``, from the controls themselves (``leaklab.model.controls``).  A user's own
command experiment has no story here: its variants get no role.
"""

from __future__ import annotations

from dataclasses import dataclass

from leaklab.model import controls

BUG, FIX, CONTROL = "bug", "fix", "control"
ROLE_ORDER = (CONTROL, BUG, FIX)  # the landing page's order within a story


@dataclass(frozen=True)
class Role:
    role: str
    expected: tuple[str, ...]  # the verdicts that are right for this variant

    def matches(self, verdict: str) -> bool:
        return verdict in self.expected


_FLAT = ("stable",)
STORIES: dict[str, dict[str, Role]] = {
    # gorocksdb's empty delete_value callback leaks every merged value (fixed by PR #152)
    "rocksdb_merge": {"capi-real": Role(BUG, ("leak",)), "capi_fixed-real": Role(FIX, _FLAT),
                      "capi-dummy": Role(CONTROL, _FLAT), "binding-dummy": Role(CONTROL, _FLAT),
                      "binding-real": Role(CONTROL, _FLAT)},
    "go_merge": {"leaky-real": Role(BUG, ("leak",)), "fixed-real": Role(FIX, _FLAT),
                 "leaky-dummy": Role(CONTROL, _FLAT), "fixed-dummy": Role(CONTROL, _FLAT)},
    # the original's C++ program: the merge operator frees its value, flat with either operator
    "cpp_merge": {"real": Role(CONTROL, _FLAT), "dummy": Role(CONTROL, _FLAT)},
    # a dict or map keeps its table after its keys are deleted; rebuilding it gives it back
    "dict_shrink": {"dict": Role(BUG, ("retention",)), "rebuilt": Role(FIX, _FLAT)},
    "go_map": {"kept": Role(BUG, ("retention",)), "rebuilt": Role(FIX, _FLAT), "rebuilt_free": Role(FIX, _FLAT)},
    # duckdb#3291 was fixed in 0.3.3: the installed DuckDB runs the fixed catalog; its
    # allocator may still be filling its caches within the run (settling)
    "duckdb_load": {"load_on": Role(FIX, ("stable", "settling")), "load_off": Role(CONTROL, _FLAT)},
    # Dolt's stats rotation kept the deleted LOCK file open (fixed by PR #9557)
    "fd_leak": {"leak": Role(BUG, ("leak",)), "close": Role(FIX, _FLAT)},
    "go_fd": {"leak": Role(BUG, ("leak",)), "close": Role(FIX, _FLAT)},
}


def role(experiment: str, variant: str) -> Role | None:
    """The variant's role and expected verdicts; None for a variant no story describes."""
    if experiment == "planted":
        return Role(CONTROL, controls.allowed_verdicts(variant))
    return STORIES.get(experiment, {}).get(variant)
