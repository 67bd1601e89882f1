"""Where a run's numbers come from: the code's git commit and state, and the command line.

Recorded in every run's ``environment.json`` (:func:`harness.workdir.save_environment`) and
shown per run by the summary and the reproduction report (:func:`code_label`).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The checkout the framework runs from."""


def _git(*args: str) -> str | None:
  try:
    result = subprocess.run(['git', '-C', PROJECT_ROOT, *args], capture_output=True,
                            text=True, timeout=30, check=False)
  except (OSError, subprocess.SubprocessError):
    return None
  return result.stdout if result.returncode == 0 else None


def _read_code_version() -> dict:
  """The checkout's HEAD and whether its tree is dirty, asked of git now."""
  commit = _git('rev-parse', 'HEAD')
  if commit is None:
    return {'commit': None, 'dirty': None}
  status = _git('status', '--porcelain')
  return {'commit': commit.strip(), 'dirty': None if status is None else bool(status.strip())}


_LOADED_CODE_VERSION = _read_code_version()
""":func:`code_version`, read once when the process imports this module: the code it loaded,
not whatever the checkout holds when a long process (a sweep, a notebook) writes a record."""


def code_version() -> dict:
  """``{'commit': <40 hex digits>, 'dirty': bool}`` of the project's git checkout when this
  process imported the framework (so a later commit or edit in the checkout does not relabel
  the code already running): ``dirty`` when tracked files differed from the commit or
  untracked files that git does not ignore existed. Both ``None`` outside a git checkout
  (e.g. an installed copy) or without git."""
  return dict(_LOADED_CODE_VERSION)


def command_line() -> str:
  """The invocation's full command line as the interpreter received it (``python -m
  experiments.run --config=...``), quoted so that a shell runs it again."""
  return shlex.join(sys.orig_argv)


def code_label(code: dict | None) -> str:
  """A recorded :func:`code_version` in a few characters: the commit's short hash (7 hex
  digits), with ``+dirty`` when the tree was dirty; ``unknown`` when no commit was recorded
  (outside a git checkout, or a run older than the record)."""
  if not code or not code.get('commit'):
    return 'unknown'
  return code['commit'][:7] + ('+dirty' if code.get('dirty') else '')
