"""pprof: Go's own heap profiles, read at each unit mark, as growth sites.

Go maps its heap itself, so malloc profilers never see a Go object; ``runtime/pprof``
does (sampled every 512 KiB allocated, scaled back as the runtime does).  Two sources:

- the project's Go programs write ``heap.<unit>.pb.gz`` (runtime/pprof's own, what
  ``go tool pprof`` reads) and ``heap.<unit>.txt`` at every unit mark into
  ``LEAKLAB_PPROF_DIR`` (``native/unitline``);
- a command experiment's ``pprof_url`` (``net/http/pprof``'s ``/debug/pprof/heap`` on
  the loopback; ``?gc=1`` collects first) is fetched by the runner each time a new unit
  appears in ``marks.jsonl`` (:func:`at_unit`): the profile, its text form (``debug=1``)
  and the names of the addresses that text leaves unnamed (``/debug/pprof/symbol``).

Why the text: ``runtime/pprof`` hides the runtime's own frames at the top of every heap
stack, in the profile and in the names of its text form (``protomem.go``: "hideRuntime"),
so a map's buckets would be named by the program's line that assigns into the map, never
by the runtime code that allocates them (``runtime.makeBucketArray``,
``runtime.(*hmap).newoverflow``).  The text form still lists every address of the stack;
``native/unitline`` names them all itself, a service's are named by its symbol endpoint.

:func:`collect` reads them itself (gzip + the profile.proto wire format, or the text
form; no Go toolchain needed): ``heap_timeline`` is the in-use bytes at each unit,
``top_sites`` the in-use bytes of the last profile (``in_use``) and their growth since
the first profile past unit 1 (``growth``), by site, in the schema heaptrack's,
massif's and jemalloc's share: ``frame`` is the first frame past Go's allocator
(``mallocgc``, ``newobject``, ``makeslice``, ``growslice``, ...) with its file and line:
for a map, the runtime's map code; ``native_caller`` the first frame outside the
runtime: the program's function that made it allocate; ``stack`` every frame.
"""

from __future__ import annotations

import gzip
import http.client
import re
import math
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from leaklab.profilers.errors import ParseError

if TYPE_CHECKING:
    import pandas as pd

DIR = "pprof"
URL_ENV = "LEAKLAB_PPROF_URL"
DIR_ENV = "LEAKLAB_PPROF_DIR"
_PROFILE = re.compile(r"^heap\.(\d+)\.(pb\.gz|txt)$")
FETCH_TIMEOUT_S = 10.0
MAX_PROFILE_BYTES = 64 * 2**20


def wrap(cmd: list[str], env: dict[str, str], rundir: Path, settings: dict) -> tuple[list[str], dict[str, str]]:
    """The project's Go programs write their profiles into ``rundir/pprof``."""
    out = Path(rundir) / DIR
    out.mkdir(parents=True, exist_ok=True)
    return list(cmd), {**env, DIR_ENV: str(out)}


def at_unit(unit: int, rundir: Path, settings: dict) -> None:
    """With a ``url`` setting (a command experiment's ``pprof_url``), fetch it into
    ``heap.<unit>.pb.gz``, its text form into ``heap.<unit>.txt`` and the names of the
    runtime frames that text hides into ``heap.<unit>.sym``; the runner calls this as
    each new unit is marked, so a slow endpoint delays its sampling by at most three
    times :data:`FETCH_TIMEOUT_S`.  A failed fetch is noted in ``pprof/errors.txt``,
    never raised; without the text and names the sites are the profile's."""
    url = (settings or {}).get("url")
    if not url:
        return
    out = Path(rundir) / DIR
    try:
        (out / f"heap.{unit}.pb.gz").write_bytes(_fetch(url))
        text = _fetch(_with_query(url, debug="1", gc=None))  # the profile's ?gc=1 has just collected
        unnamed = _unnamed_addresses(text.decode(errors="replace"))
        symbols = _fetch(_symbol_url(url), "+".join(hex(pc - 1) for pc in sorted(unnamed)).encode()) \
            if unnamed else b""
        (out / f"heap.{unit}.sym").write_bytes(symbols)
        (out / f"heap.{unit}.txt").write_bytes(text)
    except (OSError, ValueError, ParseError, http.client.HTTPException) as err:  # IncompleteRead: not an OSError
        with (out / "errors.txt").open("a") as errors:
            errors.write(f"unit {unit}: {err}\n")


def _fetch(url: str, body: bytes | None = None) -> bytes:
    with urllib.request.urlopen(url, data=body, timeout=FETCH_TIMEOUT_S) as answer:
        data = answer.read(MAX_PROFILE_BYTES + 1)
    if len(data) > MAX_PROFILE_BYTES:
        raise OSError(f"an answer over {MAX_PROFILE_BYTES} bytes from {url}")
    return data


def _with_query(url: str, **params: str | None) -> str:
    """``url`` with query parameters set (``None`` removes one)."""
    parts = urllib.parse.urlsplit(url)
    query = {k: v for k, v in {**dict(urllib.parse.parse_qsl(parts.query)), **params}.items() if v is not None}
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _symbol_url(url: str) -> str:
    """net/http/pprof's symbol endpoint beside its heap endpoint (``…/heap`` → ``…/symbol``)."""
    parts = urllib.parse.urlsplit(url)
    if not parts.path.endswith("/heap"):
        raise ValueError(f"{url}: not a …/heap endpoint, no …/symbol beside it to name the runtime's frames")
    return urllib.parse.urlunsplit(parts._replace(path=parts.path[:-len("heap")] + "symbol", query=""))


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


# ---------------------------------------------------------------- text form (debug=1)

_TEXT_HEADER = re.compile(r"^heap profile: \d+: \d+ \[\d+: \d+\] @ heap/(\d+)\s*$")
_TEXT_RECORD = re.compile(r"^(\d+): (\d+) \[(\d+): (\d+)\] @((?: 0x[0-9a-f]+)*)\s*$")
_TEXT_FRAME = re.compile(r"^#\s+0x([0-9a-f]+)(?:\s+(\S+?)(?:\+0x[0-9a-f]+)?(?:\s+(\S.*?):(\d+))?)?\s*$")


def scale_heap_sample(count: int, size: int, rate: int) -> int:
    """In-use bytes of a sampled record scaled back to all allocations: what
    ``runtime/pprof`` does for its profile (``scaleHeapSample``), not for its text."""
    if count <= 0 or size <= 0:
        return 0
    if rate <= 1:
        return size
    return int(size / (1 - math.exp(-(size / count) / rate)))


def _text_records(text: str):
    """(in-use objects, in-use bytes, addresses, {address: [(func, file, line)]}) per
    record, and the sampling rate (the header's ``heap/N`` is twice the rate)."""
    lines = text.splitlines()
    header = _TEXT_HEADER.match(lines[0]) if lines else None
    if header is None:
        raise ParseError("no 'heap profile: … @ heap/N' header: not a Go heap profile's text form")
    rate = int(header.group(1)) // 2
    records, current = [], None
    for line in lines[1:]:
        record = _TEXT_RECORD.match(line)
        if record:
            current = (int(record.group(1)), int(record.group(2)),
                       [int(a, 16) for a in record.group(5).split()], {})
            records.append(current)
            continue
        frame = _TEXT_FRAME.match(line)
        if frame and current is not None and frame.group(2):
            current[3].setdefault(int(frame.group(1), 16), []).append(
                (frame.group(2), frame.group(3) or "", int(frame.group(4) or 0)))
        if line.startswith("# runtime.MemStats"):
            break
    return records, rate


def _unnamed_addresses(text: str) -> set[int]:
    """Addresses of the text form no ``#`` line names: the runtime frames it hides."""
    unnamed = set()
    for _, _, addresses, named in _text_records(text)[0]:
        unnamed.update(pc for pc in addresses if pc not in named and pc - 1 not in named)
    return unnamed


def _symbols(data: str) -> dict[int, str]:
    """``/debug/pprof/symbol``'s answer: ``0x<address> <function>`` lines."""
    found = {}
    for line in data.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0].startswith("0x"):
            try:
                found[int(parts[0], 16)] = parts[1].strip()
            except ValueError:
                continue
    return found


def parse_text(text: str, symbols: str = "") -> tuple[dict[tuple[str, ...], int], str]:
    """The text form (``debug=1``, or ``native/unitline``'s with every frame): in-use
    bytes (scaled) by stack of ``func@file:line`` frames, innermost first, every address
    named by its ``#`` lines or else by ``symbols`` (``/debug/pprof/symbol``'s answer,
    function names only)."""
    names = _symbols(symbols)
    records, rate = _text_records(text)
    stacks: dict[tuple[str, ...], int] = {}
    for objects, nbytes, addresses, named in records:
        frames = []
        for pc in addresses:
            where = named.get(pc) or named.get(pc - 1)
            if where:
                frames += [f"{func}@{file.rsplit('/', 1)[-1]}:{line}" if file else func for func, file, line in where]
            elif names.get(pc - 1) or names.get(pc):
                frames.append(names.get(pc - 1) or names[pc])
        frames = [f for f in frames if not f.startswith("runtime.goexit")]
        key = tuple(frames)
        stacks[key] = stacks.get(key, 0) + scale_heap_sample(objects, nbytes, rate)
    return stacks, "bytes"


# ---------------------------------------------------------------- sites

def _where(name, function: tuple[int, int], line: int) -> str:
    """``func@file:line`` for one frame of a stack (file as its base name)."""
    func, filename = name(function[0]), name(function[1])
    return f"{func}@{filename.rsplit('/', 1)[-1]}:{line}" if filename != "?" and filename else func


def _frames(stack: tuple[str, ...]):
    from leaklab.profilers.stacks import Frame

    return [Frame(*where.split("@", 1)) for where in stack]


_GO_ALLOCATOR = re.compile(
    r"^runtime\.(mallocgc|newobject|newarray|makeslice(64|copy)?|growslice|rawstring(tmp)?|rawbyteslice"
    r"|rawruneslice|convT\w*|concatstring\w*|slicebytetostring|stringtoslice\w+|slicerunetostring|intstring)$"
    r"|^reflect\.unsafe_New(Array)?$"
)


def go_allocator(function: str) -> bool:
    """Go's own allocator and the helpers that only pass a size to it (``make``,
    ``append``, ``new``, string building): what never explains where memory went."""
    return bool(_GO_ALLOCATOR.match(function))


def pick_go_frame(stack: tuple[str, ...]) -> int:
    """Index of the frame to name a stack by: the first past Go's allocator (for a map's
    buckets, the runtime's map code); the innermost when every frame is the allocator."""
    return next((i for i, where in enumerate(stack) if not go_allocator(where.split("@", 1)[0])), 0)


def go_caller(stack: tuple[str, ...]) -> str | None:
    """The first frame outside Go's runtime: the program's code that made the runtime allocate."""
    return next((f.split("@", 1)[0] for f in stack if not f.startswith("runtime.")), None)


def _ranked(stacks: dict[tuple[str, ...], int], kind: str) -> pd.DataFrame:
    """Sites named by their first frame past Go's allocator; ``native_caller`` is the
    program's frame of the heaviest stack of each site."""
    from leaklab.profilers.stacks import rank_sites

    picked = {stack: pick_go_frame(stack) for stack in stacks if stack}
    sites = rank_sites([(_frames(stack), nbytes, None, picked[stack]) for stack, nbytes in stacks.items() if stack],
                       kind)
    if len(sites):
        heaviest: dict[str, tuple[str, ...]] = {}
        for stack, index in picked.items():
            label = _frames(stack[index:index + 1])[0].label()
            if label not in heaviest or stacks[stack] > stacks[heaviest[label]]:
                heaviest[label] = stack
        sites["native_caller"] = [go_caller(heaviest.get(frame, ())) for frame in sites["frame"]]
    return sites


def find_profiles(rundir: Path) -> dict[int, Path]:
    """Each unit's profile: its text form where there is one (every frame named), else
    runtime/pprof's own."""
    found: dict[int, Path] = {}
    for path in sorted((Path(rundir) / DIR).glob("heap.*")):
        match = _PROFILE.match(path.name)
        if match and (int(match.group(1)) not in found or match.group(2) == "txt"):
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def read_profile(path: Path) -> dict[tuple[str, ...], int]:
    """In-use bytes by stack of one profile file, either form."""
    data = path.read_bytes()
    if len(data) > MAX_PROFILE_BYTES:
        raise ParseError(f"over {MAX_PROFILE_BYTES} bytes")
    if path.name.endswith(".txt"):
        symbols = path.with_suffix(".sym")
        return parse_text(data.decode(errors="replace"),
                          symbols.read_text(errors="replace")[:MAX_PROFILE_BYTES] if symbols.exists() else "")[0]
    return parse(data)[0]


def collect(rundir: Path, unit_marks: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """``heap_timeline`` (in-use bytes at each unit's mark) and ``top_sites`` (``in_use``
    at the last profile, ``growth`` since the first past unit 1)."""
    import pandas as pd

    from leaklab.profilers.stacks import timeline_frame

    profiles = find_profiles(rundir)
    if not profiles:
        raise ParseError(f"{Path(rundir) / DIR}: no heap.<unit>.pb.gz or .txt (a program that is not Go, or no "
                         "pprof_url)")
    parsed = {}
    for unit, path in profiles.items():
        try:
            parsed[unit] = read_profile(path)
        except ParseError as err:
            raise ParseError(f"{path}: {err}") from None
    times = {}
    if unit_marks is not None and len(unit_marks):
        marked = unit_marks.dropna(subset=["unit"]).groupby("unit")["t"].max()
        times = {int(u): float(t) for u, t in marked.items()}
    rows = [(times.get(unit, float(unit)), sum(stacks.values()), "pprof") for unit, stacks in parsed.items()]
    # sites compare two profiles of one form: a unit whose text form could not be fetched
    # (a service already exiting) has only the profile, whose stacks lack the runtime's frames
    units = [u for u, path in profiles.items() if path.name.endswith(".txt")] or list(parsed)
    first = next((u for u in units if u >= 2), units[0])
    last = units[-1]
    growth = {stack: parsed[last].get(stack, 0) - parsed[first].get(stack, 0)
              for stack in set(parsed[last]) | set(parsed[first])}
    frames = [f for f in (_ranked(parsed[last], "in_use"), _ranked(growth, "growth")) if len(f)]
    from leaklab.profilers.stacks import empty_sites

    top = pd.concat(frames, ignore_index=True) if frames else empty_sites()
    return {"heap_timeline": timeline_frame(rows), "top_sites": top}
