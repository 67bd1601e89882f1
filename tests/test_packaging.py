"""The install: the lock file pins every requirement, the core imports without distrax, the
public modules declare ``__all__``."""

import ast
import importlib
import inspect
import os
import pkgutil
import subprocess
import sys

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


UNLOCKED_EXTRAS = ('benchmarks',)
"""Extras the lock leaves out: the benchmarks' PyTorch, pinned exactly in setup.py itself
(a CPU wheel; never in the core or test installs)."""


def _setup_requirements() -> list[Requirement]:
  """install_requires and every locked extra of setup.py, read without running it."""
  tree = ast.parse(open(os.path.join(ROOT, 'setup.py')).read())
  call = next(node for node in ast.walk(tree)
              if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == 'setup')
  keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords
              if k.arg in ('install_requires', 'extras_require')}
  specs = list(keywords['install_requires'])
  for name, extra in keywords['extras_require'].items():
    if name not in UNLOCKED_EXTRAS:
      specs += extra
  return [Requirement(spec) for spec in specs]


def _lock() -> dict[str, str]:
  pins = {}
  for line in open(os.path.join(ROOT, 'requirements', 'lock.txt')):
    line = line.split('#')[0].strip()
    if line:
      name, _, version = line.partition('==')
      assert version, f'lock line without an exact pin: {line!r}'
      pins[canonicalize_name(name)] = version
  return pins


def test_lock_pins_every_requirement_within_its_range():
  pins = _lock()
  for requirement in _setup_requirements():
    name = canonicalize_name(requirement.name)
    assert name in pins, f'{requirement.name} is in setup.py but not in requirements/lock.txt'
    assert requirement.specifier.contains(pins[name], prereleases=True), (
        f'lock pins {name}=={pins[name]}, outside setup.py range {requirement}')


def test_core_imports_without_distrax():
  """Every package but nflax.distrax_views imports with distrax and tfp unavailable."""
  code = '\n'.join([
      'import importlib.abc, sys',
      'class Block(importlib.abc.MetaPathFinder):',
      '  def find_spec(self, name, path, target=None):',
      "    if name.split('.')[0] in ('distrax', 'tensorflow_probability'):",
      "      raise ImportError('blocked ' + name)",
      'sys.meta_path.insert(0, Block())',
      'import nflax, nflax.densities, nflax.bijectors, nflax.engine, nflax.fitting',
      'import lrmf, alignflow, fdre, experiments.launch',
      'try:',
      '  import nflax.distrax_views',
      'except ImportError as err:',
      "  assert '.[distrax]' in str(err), err",
      'else:',
      "  raise AssertionError('nflax.distrax_views imported without distrax')",
  ])
  result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, 'JAX_PLATFORMS': 'cpu'})
  assert result.returncode == 0, result.stderr[-2000:]


def test_the_library_imports_without_diffrax_and_ships_its_type_marker():
  """``import nflax`` (and the methods) does not pay for diffrax, which only FFJORD's ODE solve
  imports; every library package carries ``py.typed``."""
  code = ('import sys, nflax, nflax.bijectors, lrmf.algorithm, alignflow.training, fdre.featurize\n'
          "assert 'diffrax' not in sys.modules, 'diffrax imported by the library'")
  result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, 'JAX_PLATFORMS': 'cpu'})
  assert result.returncode == 0, result.stderr[-2000:]
  for package in ('nflax', 'lrmf', 'alignflow', 'fdre'):
    assert os.path.exists(os.path.join(ROOT, package, 'py.typed')), package


DECLARING_ALL = ('nflax', 'lrmf', 'alignflow', 'fdre')
"""The library packages whose modules declare ``__all__``."""


def _modules_declaring_all() -> list[str]:
  names = []
  for package in DECLARING_ALL:
    path = importlib.import_module(package).__path__
    names += [info.name for info in pkgutil.walk_packages(path, f'{package}.')]
  return names


@pytest.mark.parametrize('name', _modules_declaring_all())
def test_all_lists_the_public_names_a_star_import_gives(name):
  """A module's ``__all__`` names exist, hold every public class and function it defines and
  nothing it imports, and are exactly what ``from <module> import *`` binds; a subpackage's
  ``__all__`` re-exports names from its modules' ``__all__``."""
  if name == 'nflax.distrax_views':
    pytest.importorskip('distrax')
  module = importlib.import_module(name)
  listed = set(module.__all__)
  assert len(listed) == len(module.__all__), f'{name}.__all__ repeats a name'
  assert all(hasattr(module, attribute) for attribute in listed), name
  namespace = {}
  exec(f'from {name} import *', namespace)  # pylint: disable=exec-used
  assert set(namespace) - {'__builtins__'} == listed
  values = {attribute: getattr(module, attribute) for attribute in listed}
  if hasattr(module, '__path__'):
    for attribute, value in values.items():
      source = importlib.import_module(value.__module__)
      assert attribute in source.__all__, f'{name} re-exports {attribute}, not public there'
    return
  defined = {attribute for attribute, value in vars(module).items()
             if not attribute.startswith('_') and (inspect.isclass(value) or
                                                   inspect.isfunction(value))
             and value.__module__ == name}
  assert defined <= listed, f'{name}.__all__ misses {sorted(defined - listed)}'
  imported = {attribute for attribute, value in values.items()
              if (inspect.isclass(value) or inspect.isfunction(value))
              and value.__module__ != name}
  assert not imported, f'{name}.__all__ lists imported {sorted(imported)}'
