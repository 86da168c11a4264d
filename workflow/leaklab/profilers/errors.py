"""The one error a profiler's ``collect`` raises when its artifacts cannot be read."""

from __future__ import annotations


class ParseError(RuntimeError):
    """A profiler artifact is missing, truncated or corrupt; the message names the file."""
