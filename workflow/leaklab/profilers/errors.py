"""The one error a profiler's ``collect`` raises when its artifacts cannot be read, and
the settings file a profiler's ``wrap`` leaves for its ``collect``."""

from __future__ import annotations

import json
from pathlib import Path


class ParseError(RuntimeError):
    """A profiler artifact is missing, truncated or corrupt; the message names the file."""


def saved_settings(path: Path, defaults: dict) -> dict:
    """The settings ``wrap`` saved at ``path`` over ``defaults`` (just the defaults if none)."""
    try:
        return {**defaults, **json.loads(Path(path).read_text()).get("settings", {})}
    except FileNotFoundError:
        return dict(defaults)
    except (json.JSONDecodeError, AttributeError) as exc:
        raise ParseError(f"{path}: corrupt ({exc!r})") from None
