"""Provenance: the recorded commit is the code the process loaded, not a later HEAD."""

import importlib.util
import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _git(checkout, *args: str) -> str:
  """Runs git in ``checkout`` with a fixed identity; its output."""
  return subprocess.run(['git', '-C', str(checkout), '-c', 'user.name=test', '-c',
                         'user.email=test@example.com', *args], check=True,
                        capture_output=True, text=True).stdout.strip()


def _copy(folder):
  """``harness/provenance.py`` copied into ``folder/harness`` (its project root: ``folder``)."""
  (folder / 'harness').mkdir()
  shutil.copy(os.path.join(ROOT, 'harness', 'provenance.py'), folder / 'harness')


def _import(folder):
  """A fresh import of the copy in ``folder``: its own module object, read at this moment."""
  spec = importlib.util.spec_from_file_location('provenance_copy',
                                                folder / 'harness' / 'provenance.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_code_version_is_the_commit_loaded_not_a_later_head(tmp_path):
  """``harness.provenance`` imported from a checkout keeps naming that checkout's commit and
  clean tree after a new commit and an edit, and ``code_label`` shortens it; a fresh
  import names the new state."""
  _copy(tmp_path)
  _git(tmp_path, 'init', '-q')
  _git(tmp_path, 'add', '-A')
  _git(tmp_path, 'commit', '-q', '-m', 'loaded')
  loaded_commit = _git(tmp_path, 'rev-parse', 'HEAD')
  provenance = _import(tmp_path)
  (tmp_path / 'later.txt').write_text('a later change\n')
  _git(tmp_path, 'add', 'later.txt')
  _git(tmp_path, 'commit', '-q', '-m', 'later')
  (tmp_path / 'later.txt').write_text('an uncommitted edit\n')
  later_commit = _git(tmp_path, 'rev-parse', 'HEAD')
  assert later_commit != loaded_commit
  assert provenance.code_version() == {'commit': loaded_commit, 'dirty': False}
  assert provenance.code_label(provenance.code_version()) == loaded_commit[:7]
  assert _import(tmp_path).code_version() == {'commit': later_commit, 'dirty': True}


def test_code_version_outside_a_checkout_records_nothing(tmp_path, monkeypatch):
  """A copy outside any git checkout records no commit rather than a made-up one."""
  monkeypatch.setenv('GIT_CEILING_DIRECTORIES', str(tmp_path.parent))
  _copy(tmp_path)
  provenance = _import(tmp_path)
  assert provenance.code_version() == {'commit': None, 'dirty': None}
  assert provenance.code_label(provenance.code_version()) == 'unknown'
