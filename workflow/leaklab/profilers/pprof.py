"""pprof: Go's own heap profiles, read at each unit mark, as growth sites.

Go maps its heap itself, so malloc profilers never see a Go object; ``runtime/pprof``
does (sampled every 512 KiB allocated, scaled back by the runtime).  Two sources:

- the project's Go programs write ``heap.<unit>.pb.gz`` at every unit mark into
  ``LEAKLAB_PPROF_DIR`` (``native/unitline``);
- a command experiment's ``pprof_url`` (``net/http/pprof``'s ``/debug/pprof/heap`` on
  the loopback; ``?gc=1`` collects first) is fetched by the runner each time a new unit
  appears in ``marks.jsonl`` (:func:`at_unit`).

:func:`collect` reads the profiles itself (gzip + the profile.proto wire format; no Go
toolchain needed to aggregate): ``heap_timeline`` is the in-use bytes at each unit,
``top_sites`` the in-use bytes of the last profile (``in_use``) and their growth since
the first profile past unit 1 (``growth``), by site, in the schema heaptrack's,
massif's and jemalloc's share.  ``frame`` is the innermost function with its file and
line, ``native_caller`` the first frame outside the runtime.  ``runtime/pprof`` hides
the runtime's own frames at the top of every heap stack (``mallocgc``, and for a map
``mapassign``, ``hashGrow``, ``makeBucketArray``): a map's buckets are named by the
line that assigns into the map.
"""

from __future__ import annotations

import gzip
import re
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from leaklab.profilers.errors import ParseError

if TYPE_CHECKING:
    import pandas as pd

DIR = "pprof"
URL_ENV = "LEAKLAB_PPROF_URL"
DIR_ENV = "LEAKLAB_PPROF_DIR"
_PROFILE = re.compile(r"^heap\.(\d+)\.pb\.gz$")
FETCH_TIMEOUT_S = 10.0
MAX_PROFILE_BYTES = 64 * 2**20


def wrap(cmd: list[str], env: dict[str, str], rundir: Path, settings: dict) -> tuple[list[str], dict[str, str]]:
    """The project's Go programs write their profiles into ``rundir/pprof``."""
    out = Path(rundir) / DIR
    out.mkdir(parents=True, exist_ok=True)
    return list(cmd), {**env, DIR_ENV: str(out)}


def at_unit(unit: int, rundir: Path, settings: dict) -> None:
    """With a ``url`` setting (a command experiment's ``pprof_url``), fetch it into
    ``heap.<unit>.pb.gz``; the runner calls this as each new unit is marked, so a slow
    endpoint delays its sampling by at most :data:`FETCH_TIMEOUT_S`.  A failed fetch
    is noted in ``pprof/errors.txt``, never raised."""
    url = (settings or {}).get("url")
    if not url:
        return
    out = Path(rundir) / DIR
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as answer:
            body = answer.read(MAX_PROFILE_BYTES + 1)
        if len(body) > MAX_PROFILE_BYTES:
            raise OSError(f"a profile over {MAX_PROFILE_BYTES} bytes")
        (out / f"heap.{unit}.pb.gz").write_bytes(body)
    except OSError as err:
        with (out / "errors.txt").open("a") as errors:
            errors.write(f"unit {unit}: {err}\n")


# ---------------------------------------------------------------- profile.proto

def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(data):
            raise ParseError("truncated varint")
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise ParseError("varint too long")


def _fields(data: bytes):
    """(field number, wire type, value) of a message: ints for varints, bytes for the rest."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            length, i = _varint(data, i)
            if i + length > len(data):
                raise ParseError("truncated field")
            value, i = data[i:i + length], i + length
        elif wire == 1:
            value, i = int.from_bytes(data[i:i + 8], "little"), i + 8
        elif wire == 5:
            value, i = int.from_bytes(data[i:i + 4], "little"), i + 4
        else:
            raise ParseError(f"wire type {wire} is not protobuf")
        yield number, wire, value


def _ints(wire: int, value) -> list[int]:
    """A repeated integer field: packed (bytes) or one varint."""
    if wire == 0:
        return [value]
    out, i = [], 0
    while i < len(value):
        v, i = _varint(value, i)
        out.append(v)
    return out


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def parse(data: bytes) -> tuple[dict[tuple[str, ...], int], str]:
    """A gzipped heap profile: in-use bytes by stack (function names, innermost first)
    and the value's unit.  ParseError for anything that is not one."""
    try:
        raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    except (OSError, EOFError) as err:
        raise ParseError(f"not gzip: {err}") from None
    strings, types, samples, locations, functions = [], [], [], {}, {}
    for number, wire, value in _fields(raw):
        if number == 6 and wire == 2:
            strings.append(value.decode(errors="replace"))
        elif number == 1 and wire == 2:
            fields = {n: v for n, _, v in _fields(value)}
            types.append((fields.get(1, 0), fields.get(2, 0)))
        elif number == 2 and wire == 2:
            locs, values = [], []
            for n, w, v in _fields(value):
                if n == 1:
                    locs += _ints(w, v)
                elif n == 2:
                    values += [_signed(x) for x in _ints(w, v)]
            samples.append((locs, values))
        elif number == 4 and wire == 2:
            loc_id, lines = 0, []
            for n, _, v in _fields(value):
                if n == 1:
                    loc_id = v
                elif n == 4:
                    line = {ln: lv for ln, _, lv in _fields(v)}
                    lines.append((line.get(1, 0), line.get(2, 0)))
            locations[loc_id] = lines
        elif number == 5 and wire == 2:
            fields = {n: v for n, _, v in _fields(value) if isinstance(v, int)}
            functions[fields.get(1, 0)] = (fields.get(2, 0), fields.get(4, 0))
    def name(index: int) -> str:
        return strings[index] if 0 <= index < len(strings) else "?"

    kinds = [name(t) for t, _ in types]
    if "inuse_space" not in kinds:
        raise ParseError(f"no inuse_space in a profile of {', '.join(kinds) or 'nothing'}: not a heap profile")
    column = kinds.index("inuse_space")
    stacks: dict[tuple[str, ...], int] = {}
    for locs, values in samples:
        if column >= len(values):
            raise ParseError("a sample has fewer values than sample types")
        frames = tuple(_where(name, functions.get(f, (0, 0)), line)
                       for loc in locs for f, line in locations.get(loc, []))
        stacks[frames] = stacks.get(frames, 0) + values[column]
    return stacks, name(types[column][1])


def _where(name, function: tuple[int, int], line: int) -> str:
    """``func@file:line`` for one frame of a stack (file as its base name)."""
    func, filename = name(function[0]), name(function[1])
    return f"{func}@{filename.rsplit('/', 1)[-1]}:{line}" if filename != "?" and filename else func


def _frames(stack: tuple[str, ...]):
    from leaklab.profilers.stacks import Frame

    return [Frame(*where.split("@", 1)) for where in stack]


def go_caller(stack: tuple[str, ...]) -> str | None:
    """The first frame outside Go's runtime: the program's code that made the runtime allocate."""
    return next((f.split("@", 1)[0] for f in stack if not f.startswith("runtime.")), None)


def _ranked(stacks: dict[tuple[str, ...], int], kind: str) -> pd.DataFrame:
    """Sites named by their innermost frame; ``native_caller`` is the program's frame."""
    from leaklab.profilers.stacks import rank_sites

    sites = rank_sites([(_frames(stack), nbytes, None, 0) for stack, nbytes in stacks.items()], kind)
    if len(sites):
        sites["native_caller"] = [go_caller(_heaviest(frame, stacks)) for frame in sites["frame"]]
    return sites


def _heaviest(frame: str, stacks: dict[tuple[str, ...], int]) -> tuple[str, ...]:
    """The heaviest stack whose innermost frame is ``frame``."""
    mine = [s for s in stacks if s and _frames(s[:1])[0].label() == frame]
    return max(mine, key=lambda s: stacks[s]) if mine else ()


def find_profiles(rundir: Path) -> dict[int, Path]:
    found = {}
    for path in (Path(rundir) / DIR).glob("heap.*.pb.gz"):
        match = _PROFILE.match(path.name)
        if match:
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def collect(rundir: Path, unit_marks: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """``heap_timeline`` (in-use bytes at each unit's mark) and ``top_sites`` (``in_use``
    at the last profile, ``growth`` since the first past unit 1)."""
    import pandas as pd

    from leaklab.profilers.stacks import timeline_frame

    profiles = find_profiles(rundir)
    if not profiles:
        raise ParseError(f"{Path(rundir) / DIR}: no heap.<unit>.pb.gz (a program that is not Go, or no pprof_url)")
    parsed = {}
    for unit, path in profiles.items():
        try:
            parsed[unit] = parse(path.read_bytes())[0]
        except ParseError as err:
            raise ParseError(f"{path}: {err}") from None
    times = {}
    if unit_marks is not None and len(unit_marks):
        marked = unit_marks.dropna(subset=["unit"]).groupby("unit")["t"].max()
        times = {int(u): float(t) for u, t in marked.items()}
    rows = [(times.get(unit, float(unit)), sum(stacks.values()), "pprof") for unit, stacks in parsed.items()]
    units = list(parsed)
    first = next((u for u in units if u >= 2), units[0])
    last = units[-1]
    growth = {stack: parsed[last].get(stack, 0) - parsed[first].get(stack, 0)
              for stack in set(parsed[last]) | set(parsed[first])}
    frames = [f for f in (_ranked(parsed[last], "in_use"), _ranked(growth, "growth")) if len(f)]
    from leaklab.profilers.stacks import empty_sites

    top = pd.concat(frames, ignore_index=True) if frames else empty_sites()
    return {"heap_timeline": timeline_frame(rows), "top_sites": top}
