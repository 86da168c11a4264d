"""A user's own program (a command experiment): its argv, what stands in front of it,
and the files its working directory needs.

Profilers trace the process the runner starts.  A command run through a shell, or a
script, puts an interpreter in that place: heaptrack then reports the shell's
allocations with ``profile_status: ok``.  So a command is split into argv and started
directly; only a command that needs a shell (pipes, redirections, ``&&``, ``$VAR``)
gets ``/bin/sh -c``, and a run whose first process is a shell or a script says so
(:func:`wrapper_note`) instead of passing the interpreter's profile for the program's.

A value never becomes syntax: in a command run directly each placeholder fills one
argument, and in one run by the shell every substituted value is quoted
(``shlex.quote``), so a parameter ``it's`` or ``; touch x`` arrives as itself.  The
files copied into a run's working directory must lie inside ``{project}`` (or the
setup step's directory): an absolute path or ``..`` elsewhere is refused.
"""

from __future__ import annotations

import os
import shlex
import shutil
import string
from pathlib import Path

SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "mksh", "busybox", "fish", "csh", "tcsh"}
SHELL_CHARACTERS = set("|&;<>()$`")  # operators, expansions, substitutions


def needs_shell(command: str) -> bool:
    """Whether the command uses shell syntax outside quotes: operators (``|``, ``&&``,
    ``>``...), ``$`` expansions or backticks (which work inside double quotes too), or
    quotes left open.  ``sh -c 'kill $$'`` needs none: its ``$`` is the inner shell's."""
    quote, escaped = None, False
    for ch in command:
        if escaped:
            escaped = False
        elif quote == "'":
            quote = None if ch == "'" else quote
        elif ch == "\\":
            escaped = True
        elif quote == '"':
            if ch in "$`":
                return True
            quote = None if ch == '"' else quote
        elif ch in "'\"":
            quote = ch
        elif ch in SHELL_CHARACTERS:
            return True
    return quote is not None


class _ShellQuoted(string.Formatter):
    """``str.format`` whose every substituted value (after its format spec) is one shell word."""

    def format_field(self, value: object, format_spec: str) -> str:
        return shlex.quote(super().format_field(value, format_spec))


def argv(command: str, fields: dict) -> list[str]:
    """The command's argv with its placeholders filled.  Split first, then filled, so a
    value with spaces stays one argument; a command that needs a shell runs as
    ``/bin/sh -c`` with every value quoted (and is reported, see :func:`wrapper_note`)."""
    if needs_shell(command):
        return ["/bin/sh", "-c", _ShellQuoted().format(command, **fields)]
    return [token.format(**fields) for token in shlex.split(command)]


def _interpreter(path: str) -> str | None:
    """The interpreter a script names on its ``#!`` line (``/usr/bin/env python3`` -> python3)."""
    try:
        with open(path, "rb") as f:
            first = f.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode(errors="replace").split()
    if not words:
        return None
    return words[1] if Path(words[0]).name == "env" and len(words) > 1 else words[0]


def wrapper_note(cmd: list[str]) -> str | None:
    """Why a profile of ``cmd`` is not the program's own, or None when ``cmd[0]`` is a
    program: a shell (``sh -c ...``, ``bash run.sh``) or a script run by an interpreter."""
    first = shutil.which(cmd[0]) or cmd[0]
    if Path(first).name in SHELLS:
        return (f"the command starts the shell {first}: the profiler traced the shell, not the program it "
                f"runs; give the program itself as the command (no wrapper script, no shell syntax)")
    interpreter = _interpreter(first)
    if interpreter is not None:
        return (f"the command is a script run by {interpreter} ({first}): the profiler traced {interpreter}, "
                f"not a program the script starts; give the program itself as the command")
    return None


def workdir_source(template: str, fields: dict) -> Path:
    """The file ``template`` names, relative to ``{project}``; ValueError unless it lies
    (symbolic links followed) inside ``{project}`` or the setup step's directory:
    configuration must not copy ``/etc/shadow`` into a run."""
    project = Path(fields.get("project", "."))
    source = project / template.format(**fields)
    roots = [project] + ([Path(fields["setup_dir"])] if fields.get("setup_dir") else [])
    real = source.resolve()
    if not any(real.is_relative_to(root.resolve()) for root in roots):
        raise ValueError(f"workdir_files: {template!r} is {real}, outside {{project}} ({project.resolve()}) "
                         f"and the setup directory; allowed: paths relative to {{project}}, without '..'")
    return source


def stage_workdir(files: list[str] | tuple[str, ...], fields: dict, workdir: Path) -> list[Path]:
    """Copy each file or directory into the run's working directory (under its own
    name) before the run starts: every run gets fresh copies it may write to.  A
    relative path is relative to ``{project}`` and stays inside it."""
    staged = []
    for template in files:
        source = workdir_source(template, fields)
        target = Path(workdir) / source.name
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
        elif source.exists():
            shutil.copy2(source, target)
        else:
            raise FileNotFoundError(f"workdir_files: {source} does not exist")
        staged.append(target)
    return staged


def fields(params: dict, variant: str, workdir: Path) -> dict:
    """What a command's placeholders may name: the parameters, the variant, the run's workdir."""
    return {**params, "variant": variant, "workdir": os.fspath(workdir)}
