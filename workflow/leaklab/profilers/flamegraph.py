"""A small flame graph renderer: collapsed stacks in, SVG out.

Debian 12 packages no flame graph renderer (``flamegraph.pl`` is not in its archive),
so the collapsed stacks jeprof and heaptrack write (``root;...;leaf value`` per line)
are drawn here: one box per frame, width proportional to bytes, callers below
callees, the full frame name and bytes in each box's tooltip.  Opens in any browser.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from html import escape
from pathlib import Path

WIDTH = 1200
ROW = 16
MIN_BOX_PX = 0.5


def read_collapsed(text: str) -> Iterator[tuple[list[str], int]]:
    """``(frames root first, value)`` per ``root;...;leaf value`` line; the one reader of
    the format, for the flame graphs here and jemalloc's top sites."""
    for line in text.splitlines():
        stack, _, value = line.rstrip().rpartition(" ")
        try:
            amount = int(float(value))
        except ValueError:
            continue
        if stack:
            yield stack.split(";"), amount


def parse_collapsed(text: str) -> dict[tuple[str, ...], int]:
    """``{stack (root first): value}``; non-positive values (a shrinking diff) are dropped."""
    stacks: dict[tuple[str, ...], int] = {}
    for frames, amount in read_collapsed(text):
        if amount > 0:
            key = tuple(frames)
            stacks[key] = stacks.get(key, 0) + amount
    return stacks


def _tree(stacks: dict[tuple[str, ...], int]) -> dict:
    root: dict = {"name": "all", "value": 0, "children": {}}
    for stack, value in stacks.items():
        node = root
        node["value"] += value
        for frame in stack:
            node = node["children"].setdefault(frame, {"name": frame, "value": 0, "children": {}})
            node["value"] += value
    return root


def _colour(name: str) -> str:
    digest = hashlib.md5(name.encode()).digest()
    return f"rgb({205 + digest[0] % 50},{80 + digest[1] % 120},{digest[2] % 60})"


def render(stacks: dict[tuple[str, ...], int], title: str) -> str:
    """The SVG document for ``stacks``."""
    root = _tree(stacks)
    depth = max((len(s) for s in stacks), default=0) + 1
    height = (depth + 2) * ROW + 10
    boxes: list[str] = []
    scale = (WIDTH - 20) / root["value"] if root["value"] else 0.0

    def draw(node: dict, x: float, level: int) -> None:
        width = node["value"] * scale
        if width < MIN_BOX_PX:
            return
        y = height - (level + 1) * ROW - 5
        label = f"{node['name']} ({node['value']:,} bytes, {100 * node['value'] / root['value']:.1f}%)"
        text = escape(node["name"])[: int(width / 7)] if width > 30 else ""
        boxes.append(
            f'<g><title>{escape(label)}</title><rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{ROW - 1}" '
            f'fill="{_colour(node["name"])}" rx="2"/><text x="{x + 3:.1f}" y="{y + ROW - 4}">{text}</text></g>'
        )
        child_x = x
        for child in sorted(node["children"].values(), key=lambda c: c["name"]):
            draw(child, child_x, level + 1)
            child_x += child["value"] * scale

    if root["value"]:
        draw(root, 10, 0)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="monospace" font-size="11">'
        f'<rect width="100%" height="100%" fill="#fdfdf6"/>'
        f'<text x="{WIDTH / 2}" y="{ROW}" text-anchor="middle" font-size="14">{escape(title)}</text>'
        + "".join(boxes) + "</svg>\n"
    )


def write(collapsed: Path, out: Path, title: str) -> None:
    out.write_text(render(parse_collapsed(Path(collapsed).read_text()), title))
