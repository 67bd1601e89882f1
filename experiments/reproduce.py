r"""Runs the paper experiments over seeds and writes the reproduction report.

  python -m experiments.reproduce --tier=fast [--runs=lrmf_moons,fdre_gaussians] \
      [--workdir=runs/reproduce] [--report=REPRODUCTION.md]

Two tiers of the same rows:

* ``fast``: every row on a 2-core CPU, aimed at 30 minutes in all (the report's header gives
  the measured total); each :class:`Run` says
  what it makes smaller than its config (``fast``: overrides, ``fast_note``: in words);
* ``paper``: the papers' sizes (the configs' ``paper`` variants where they exist), for
  accelerators; each run says what it costs (``paper_cost``).

Every :class:`Run` is one config trained for several seeds: side by side in one program where
the experiment supports it (:data:`experiments.launch.SEEDS_SIDE_BY_SIDE`), otherwise one run
per seed (``<run>/seed_<s>``). Its results go to ``<workdir>/<tier>/<run>`` and resume like any
run; a finished seed is read, not rerun. Every :class:`Row` reads one or two metrics of one run
over its seeds and states a verdict (:func:`verdict`):

* a :class:`Value` row reports ``mean +- SE (n seeds)`` and *matches* when the paper's number
  lies inside our 95% interval (Student t over seeds) widened by the row's stated
  ``tolerance`` (e.g. "converges to 0" read as ``|L| <= eps``);
* an :class:`Ordering` row reports the paired difference over seeds, ``lower - higher``, with
  its standard error and the one-sided paired t-test's p-value, and *matches* when p < 0.05;
* otherwise *differs*; or *not comparable* with the reason (other data, other scale, no number
  in the paper, one seed).

The report's header states the tier, the package versions, the machine and the total wall
time (the sum of the runs' wall times as measured here, compilation included). Rows whose
run is not rerun now (``--runs``) keep their cells from the existing report, so a partial rerun
never erases finished numbers.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib.metadata
import json
import math
import os
import platform
import re
import time
from typing import Any, Sequence

import jax
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags
from scipy import stats

from experiments import launch

TIERS = ('fast', 'paper')
SIGNIFICANCE = 0.05
"""Ordering rows match at a one-sided paired p-value below this."""
REPORTED_PACKAGES = ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'numpy', 'scipy',
                     'scikit-learn', 'diffrax')


# ---------------------------------------------------------------------------------------------
# Runs and rows.


@dataclasses.dataclass(frozen=True)
class Run:
  """One config trained over seeds, at two sizes.

  Attributes:
    name: the run's folder under ``<workdir>/<tier>`` and its ``--runs`` name.
    config: the config file.
    variant: its variant in the fast tier (``''``: the default config).
    fast: ``(field, value)`` overrides of the fast tier.
    fast_note: what the fast tier makes smaller than the config, in words.
    paper_variant: the variant of the paper tier (``None``: as the fast tier's variant).
    paper: overrides of the paper tier.
    paper_cost: what the paper tier costs, in words.
    fast_seeds, paper_seeds: number of seeds (0, 1, ...) of each tier.
    tiers: the tiers that run it; a run too costly for the fast tier's 30 minutes at any size
      that still says something (FFJORD: hours on a CPU) is ``('paper',)``, and its rows in
      the fast report point to the paper tier's report.
  """
  name: str
  config: str
  variant: str = ''
  fast: tuple[tuple[str, Any], ...] = ()
  fast_note: str = 'as the config'
  paper_variant: str | None = None
  paper: tuple[tuple[str, Any], ...] = ()
  paper_cost: str = 'as the fast tier'
  fast_seeds: int = 5
  paper_seeds: int = 5
  tiers: tuple[str, ...] = TIERS

  def spec(self, tier: str) -> str:
    variant = self.variant if tier == 'fast' or self.paper_variant is None else self.paper_variant
    return self.config + (f':{variant}' if variant else '')

  def overrides(self, tier: str) -> tuple[tuple[str, Any], ...]:
    return self.fast if tier == 'fast' else self.paper

  def seeds(self, tier: str) -> tuple[int, ...]:
    """Seeds 0, 1, ... of ``tier``; none in a tier that does not run it."""
    if tier not in self.tiers:
      return ()
    return tuple(range(self.fast_seeds if tier == 'fast' else self.paper_seeds))

  def command(self, tier: str) -> str:
    """The ``experiments.run`` command(s) of this run (a loop over seeds where the experiment
    takes one seed per run)."""
    flags_ = ' '.join(f"--config.{k}='{_flag_value(v)}'" for k, v in self.overrides(tier))
    seeds = self.seeds(tier)
    base = f'python -m experiments.run --config={self.spec(tier)}'
    if side_by_side(self, tier):
      seeds_flag = f"--config.seeds='{_flag_value(seeds)}'"
      return f'{base} --workdir=runs/{self.name} {seeds_flag} {flags_}'.strip()
    return (f'for s in {" ".join(map(str, seeds))}; do {base} --workdir=runs/{self.name}/seed_$s '
            f'--config.seeds="($s,)" {flags_}; done').replace('  ', ' ')


def _flag_value(value: Any, inside: bool = False) -> str:
  """``value`` as a ``--config.<field>='...'`` flag writes it: tuples as Python literals
  (their strings double-quoted), a string field as it is."""
  if isinstance(value, tuple):
    return '(' + ','.join(_flag_value(v, True) for v in value) + (',)' if len(value) == 1 else ')')
  return f'"{value}"' if inside and isinstance(value, str) else str(value)


@dataclasses.dataclass(frozen=True)
class Value:
  """Our mean over seeds of ``metric`` against the paper's number ``paper``.

  ``tolerance`` widens our interval by what the paper's claim allows (e.g. "~0" as
  ``|x| <= 0.05``); ``not_comparable`` is the reason, when there is one, that our number
  cannot confirm or refute the paper's (other data, other scale); ``paper=None``: the paper
  gives no number.
  """
  metric: str
  paper: float | None
  tolerance: float = 0.0
  not_comparable: str = ''


@dataclasses.dataclass(frozen=True)
class Ordering:
  """The paper's ordering ``lower < higher`` of two metrics of one run, paired over seeds."""
  lower: str
  higher: str
  not_comparable: str = ''


@dataclasses.dataclass(frozen=True)
class Row:
  """One line of the report: the paper's claim, its number, and how ours is read."""
  method: str
  claim: str
  paper: str
  run: Run
  check: Value | Ordering


# ---------------------------------------------------------------------------------------------
# Statistics.


def summary(values: Sequence[float]) -> tuple[float, float | None, int]:
  """``(mean, standard error, n)`` of the finite values (SE ``None`` for n < 2)."""
  x = np.asarray(values, np.float64)
  x = x[np.isfinite(x)]
  if not x.size:
    return float('nan'), None, 0
  se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else None
  return float(x.mean()), se, int(x.size)


def interval_half_width(se: float | None, n: int, level: float = 0.95) -> float:
  """Half width of the Student-t interval of a mean over ``n`` seeds."""
  if se is None or n < 2:
    return float('nan')
  return float(stats.t.ppf(0.5 + level / 2, n - 1) * se)


def paired_ordering(lower: Sequence[float], higher: Sequence[float]
                    ) -> tuple[float, float | None, float, int]:
  """Paired difference ``lower - higher`` over seeds: ``(mean, SE, p, n)``.

  ``p`` is the one-sided paired t-test's p-value of "lower < higher" (seeds where either
  value is not finite are dropped). Identical differences (SE 0) give p = 0 when they are
  all negative and 1 otherwise.
  """
  a, b = np.asarray(lower, np.float64), np.asarray(higher, np.float64)
  keep = np.isfinite(a) & np.isfinite(b)
  d = a[keep] - b[keep]
  mean, se, n = summary(d)
  if n < 2:
    return mean, se, float('nan'), n
  if se == 0:
    return mean, se, 0.0 if mean < 0 else 1.0, n
  return mean, se, float(stats.ttest_1samp(d, 0.0, alternative='less').pvalue), n


def _fmt(x: float | None) -> str:
  if x is None or not math.isfinite(x):
    return '-' if x is None else str(x)
  return f'{x:.4g}' if abs(x) >= 1e-3 or x == 0 else f'{x:.2e}'


def rounding_tolerance(paper: str) -> float:
  """Half a unit in the last digit of the first decimal number of a paper cell: the paper's
  number is known only to the digits it prints (``'0.99 +- 0.0003'`` -> 0.005). Integers
  (``'0'``, ``'1 (every run)'``) are exact claims: 0."""
  match = re.search(r'-?\d+(?:\.(\d+))?', paper)
  if match is None or match.group(1) is None:
    return 0.0
  return 0.5 * 10.0**-len(match.group(1))


def verdict(check: Value | Ordering, per_seed: Sequence[dict],
            paper: str = '') -> tuple[str, str]:
  """``(ours, verdict)`` cells of a row from its run's per-seed metrics; ``paper`` is the
  row's paper cell, whose printed precision widens a :class:`Value`'s interval
  (:func:`rounding_tolerance`)."""
  def values(name):
    return [float(r[name]) if isinstance(r.get(name), (int, float, bool)) else float('nan')
            for r in per_seed]

  if isinstance(check, Ordering):
    mean, se, p, n = paired_ordering(values(check.lower), values(check.higher))
    ours = f'{_fmt(mean)} +- {_fmt(se)} (p={_fmt(p)}, {n} seeds)'
    if check.not_comparable:
      return ours, f'not comparable: {check.not_comparable}'
    if n < 2:
      return ours, 'not comparable: fewer than 2 seeds'
    return ours, 'matches' if p < SIGNIFICANCE else 'differs'
  mean, se, n = summary(values(check.metric))
  ours = f'{_fmt(mean)} +- {_fmt(se)} ({n} seeds)' if n > 1 else f'{_fmt(mean)} ({n} seed)'
  if check.not_comparable:
    return ours, f'not comparable: {check.not_comparable}'
  if check.paper is None:
    return ours, 'not comparable: no number in the paper'
  if n < 2:
    return ours, 'not comparable: fewer than 2 seeds'
  half = interval_half_width(se, n) + check.tolerance + rounding_tolerance(paper)
  return ours, 'matches' if abs(mean - check.paper) <= half else 'differs'


# ---------------------------------------------------------------------------------------------
# The runs of the report.

_SMALL_FLOWS = (('density.hidden', (128, 128)), ('flow.hidden', (128, 128)))
_NO_BIAS = (('estimate_bias', False),)

LRMF_MOONS = Run(
    'lrmf_moons', 'configs/lrmf_moons.py',
    paper=(('density.hidden', (512, 512)), ('flow.hidden', (512, 512))),
    paper_cost="the paper's 2x512 Real NVPs: about 25 min for 5 seeds on a 2-core CPU")
LRMF_MOONS_FFJORD = Run(
    'lrmf_moons_ffjord', 'configs/lrmf_moons.py', 'ffjord', tiers=('paper',),
    paper_cost='FFJORD M and T, 5 seeds side by side: about 95 min on a 2-core CPU (1500 '
               'private steps a domain at 1.5-2 steps/s, 1500 joint at 0.5-0.8 as the solver '
               'takes more steps, the E_bias fit); too long for the fast tier at any size that '
               'converges')
ROTATIONS = (-30, 30, 40, 60)
"""Rotations of B (degrees) besides the paper's 50 at which the flagship recipe is run over
seeds (issue 16: does the held-out objective reach 0 beyond the paper's angle?)."""
LRMF_MOONS_ROTATED = tuple(
    Run(f"lrmf_moons_rotated_{'m' if angle < 0 else ''}{abs(angle)}", 'configs/lrmf_moons.py',
        paper=(('data.b.options.rotation_degrees', float(angle)),), tiers=('paper',),
        paper_cost="the config's Real NVP 2x128 (the recipe under test, not the paper's "
                   '2x512) with B rotated by this angle, 5 seeds side by side: about 7 min on '
                   'a 2-core CPU')
    for angle in ROTATIONS)
LRMF_MOONS_GAUSSIAN = Run('lrmf_moons_gaussian', 'configs/lrmf_moons.py', 'gaussian',
                          fast=_NO_BIAS, fast_note='no E_bias fit')
LRMF_BLOBS = Run('lrmf_blobs', 'configs/lrmf_blobs.py', fast=_NO_BIAS, fast_note='no E_bias fit')
LRMF_BASELINES = Run(
    'lrmf_moons_baselines', 'configs/lrmf_moons_baselines.py',
    fast=_SMALL_FLOWS + _NO_BIAS + (
        ('train_private.num_steps', 600), ('train_joint.num_steps', 600),
        ('train_baseline.num_steps', 200), ('emd.num_iters', 50),
        ('adversarial.num_steps', 400)),
    fast_note='Real NVP 2x128 (config: 2x256), 600 private / joint steps (config: 1500 / 2000), '
              '200 MMD / EMD steps with 50 Sinkhorn iterations (config: 1000 with 200), 400 '
              'SN-GAN steps (config: 2000)',
    fast_seeds=3, paper_seeds=5, paper_cost='about 10 min a seed on a 2-core CPU')
_SURFACES_FAST = _SMALL_FLOWS + _NO_BIAS + (('train_private.num_steps', 300),
                                            ('train_joint.num_steps', 300))
LRMF_SURFACES = Run('lrmf_surfaces', 'configs/lrmf_surfaces.py', fast=_SURFACES_FAST,
                    fast_note='Real NVP 2x128 (config: 2x256), 300 private and joint steps '
                              '(config: 2000)',
                    fast_seeds=3, paper_cost='about 5 min a seed on a 2-core CPU')
LRMF_SURFACES_REVERSE = dataclasses.replace(LRMF_SURFACES, name='lrmf_surfaces_reverse',
                                            variant='reverse')
LRMF_DIGITS = Run(
    'lrmf_digits', 'configs/lrmf_digits.py', paper_variant='paper',
    fast=_SMALL_FLOWS + _NO_BIAS + (('train_vae.num_steps', 600),
                                    ('vae.discriminator.hidden', (128,)),
                                    ('train_private.num_steps', 400),
                                    ('train_joint.num_steps', 400)),
    fast_note='VAE-GAN 600 steps with a 1x128 discriminator (config: 4000, 2x256), Real NVP '
              '2x128 (config: 2x256), 400 private and joint steps (config: 1500)',
    fast_seeds=3, paper_seeds=3,
    paper_cost='Real NVP 2x512: about 10 min a seed on a 2-core CPU')
LRMF_GLOW = Run(
    'lrmf_glow_digits', 'configs/lrmf_glow_digits.py', paper_variant='paper',
    fast=_NO_BIAS + (('data.a.options.size', 8), ('data.b.options.size', 8),
                     ('density.steps_per_level', 2), ('flow.steps_per_level', 2),
                     ('density.hidden_channels', 8), ('flow.hidden_channels', 8),
                     ('train_private.num_steps', 100), ('train_joint.num_steps', 100)),
    fast_note='8x8 digits (config: 16x16), Glow 2 levels x 2 steps with 8 channels (config: '
              '4 steps, 32), 100 private and joint steps (config: 600)', fast_seeds=3,
    paper_seeds=3,
    paper_cost='Glow 3 x 8 x 512 channels, 5000 steps a stage: GPU hours')
LRMF_VANISHING = Run('lrmf_vanishing_gradient', 'configs/lrmf_vanishing_gradient.py')

FDRE_GAUSSIANS = Run(
    'fdre_gaussians', 'configs/fdre_gaussians.py', paper_variant='paper',
    fast=(('train_flow.num_steps', 1000), ('train_classifier.num_steps', 800),
          ('train_joint.num_steps', 1000)),
    fast_note='1000 flow / 800 classifier / 1000 joint steps (config: 2000 / 1500 / 2000)',
    paper_cost='100 epochs of 4000 points a stage: about 10 min a seed on a 2-core CPU')
FDRE_MI = Run(
    'fdre_mutual_information', 'configs/fdre_mutual_information.py', paper_variant='paper',
    fast=(('data.splits', (4000, 1000, 2000)), ('train_flow.num_steps', 1500),
          ('train_classifier.num_steps', 800), ('train_joint.num_steps', 800)),
    fast_note='4000 training pairs (config: 20000), 1500 flow / 800 classifier / 800 joint '
              'steps (config: 8000 / 1500 / 2000)', fast_seeds=3, paper_seeds=3,
    paper_cost='80K pairs, 200 epochs a stage: GPU hours')
FDRE_DA = Run('fdre_domain_adaptation', 'configs/fdre_domain_adaptation.py',
              paper_variant='paper', fast=(('num_runs', 1), ('train_flow.num_steps', 500)),
              fast_note='one data draw per seed, 500 flow steps (config: 2000)',
              paper=(('num_runs', 1),), paper_seeds=10,
              paper_cost='about 1 min a seed on a 2-core CPU')
FDRE_BREAST_CANCER = Run('fdre_breast_cancer', 'configs/fdre_domain_adaptation.py',
                         'breast_cancer', fast=(('num_runs', 1),),
                         fast_note='one biased draw per seed', paper=(('num_runs', 1),),
                         paper_seeds=10, paper_cost='under 1 min a seed on a 2-core CPU')
FDRE_TARGETED = Run(
    'fdre_targeted_mnist', 'configs/fdre_targeted_mnist.py', paper_variant='paper',
    fast=(('train_flow.num_steps', 600), ('train_classifier.num_steps', 400),
          ('num_proposals', 2000), ('num_samples', 500)),
    fast_note='600 flow / 400 classifier steps (config: 1500 / 1000), 2000 proposals for 500 '
              'samples (config: 5000 for 1000)', fast_seeds=3, paper_seeds=3,
    paper_cost='MAF of 5 MADE blocks x 1024 on 28x28 digits (Table 4): about 0.24 s a training '
               'step (2,040 steps, one flow a perc) and 0.5 s a proposal for the sequential '
               'inverse (784 MADE passes a block, 5,000 proposals a perc): about 1.7 h a seed '
               'on a shared 2-core CPU')
FDRE_AUGMENTATION = Run(
    'fdre_augmentation', 'configs/fdre_augmentation.py', paper_variant='paper',
    fast=(('train_generator.num_steps', 300), ('train_flow.num_steps', 500),
          ('weighting.powers', (0.2, 1.0))),
    fast_note='300 generator / 500 flow steps (config: 400 / 1500), weight powers 0.2 and 1 '
              '(config: 0.1, 0.2, 0.5, 1)',
    paper_seeds=3, paper_cost='about 3 min a seed on a 2-core CPU')

ALIGNFLOW_MNIST = Run(
    'alignflow_mnist', 'configs/alignflow_mnist.py', paper_variant='paper_scale',
    fast=(('data.options.size', 8), ('data.splits', (400, 100, 100)), ('train.num_steps', 100),
          ('lams', (1e-3,))),
    fast_note='8x8 digits (config: 16x16), 400 training and 100 test pairs (config: 800 and '
              '200), 100 steps (config: 2000), lam 1e-3 only',
    fast_seeds=3, paper_seeds=3,
    paper_cost='32x32, 3 scales, 25,000 steps a model: GPU hours')
_HYBRID_AND_CYCLEGAN_FAST = (
    ('data.options.size', 8), ('data.splits', (400, 50, 50)), ('train.num_steps', 100),
    ('modes', ('hybrid', 'cyclegan')), ('lams', (1e-2,)))
_HYBRID_AND_CYCLEGAN_NOTE = ('8x8 digits (config: 16x16), 400 training and 50 validation / test '
                             'pairs (config: 800, 100, 200), 100 steps (config: 2000), hybrid at '
                             'lam 1e-2 and CycleGAN only (config: also ADV-only, MLE-only, lam '
                             '1e-3)')
ALIGNFLOW_MNIST_GAMMA = Run(
    'alignflow_mnist_gamma', 'configs/alignflow_mnist.py',
    fast=(('data.options.transform', 'gamma'),) + _HYBRID_AND_CYCLEGAN_FAST,
    fast_note='domain B is the square root of A (config: inverted and squared); '
              + _HYBRID_AND_CYCLEGAN_NOTE,
    fast_seeds=3, paper_variant='paper_scale', paper=(('data.options.transform', 'gamma'),),
    paper_seeds=3, paper_cost='32x32, 3 scales, 25,000 steps a model: GPU hours')
ALIGNFLOW_MNIST_ROTATED = Run(
    'alignflow_mnist_rotated', 'configs/alignflow_mnist.py', 'rotate',
    paper_variant='paper_scale', paper=(('data.options.transform', 'rotate90'),),
    paper_seeds=3, tiers=('paper',),
    paper_cost='32x32, 3 scales, 25,000 steps a model: GPU hours; not in the fast tier, where '
               '(8x8, 100 steps) neither model learns a quarter turn and its rows said nothing')
ALIGNFLOW_MOONS = Run('alignflow_moons', 'configs/alignflow_moons.py',
                      fast=(('train.num_steps', 300), ('lams', (0.1,)),
                            ('modes', ('adversarial', 'hybrid', 'mle'))),
                      fast_note='300 steps (config: 2000), lam 0.1 (config: 0.001, 0.01, 0.1), '
                                'no CycleGAN (no row reads it)',
                      paper_cost='about 5 min for 5 seeds on a 2-core CPU')
ALIGNFLOW_ADAPTATION = Run(
    'alignflow_digits_adaptation', 'configs/alignflow_digits_adaptation.py',
    paper_variant='paper',
    fast=(('data.a.options.size', 8), ('data.b.options.size', 8), ('train.num_steps', 150),
          ('train.select_every', 75), ('train.steps_per_dispatch', 75)),
    fast_note='8x8 digits (config: 16x16), 150 steps (config: 1200)', fast_seeds=3, paper_seeds=3,
    paper_cost='32x32, 25,000 steps: GPU hours')

# ---------------------------------------------------------------------------------------------
# The rows.

_EPS = 0.05  # "converges to 0" read as |L| <= eps, the flag's eps of the LRMF configs

LRMF_ROWS = (
    Row('lrmf', 'moons, Real NVP LRMF: 1-NN accuracy of T(A) (Fig. 4)', '0.99 +- 0.0003',
        LRMF_MOONS, Value('one_nn_accuracy', 0.99)),
    Row('lrmf', 'moons, no alignment (input): 1-NN accuracy (Fig. 4)', '0.96', LRMF_MOONS,
        Value('one_nn_accuracy_identity_map', 0.96)),
    Row('lrmf', 'moons, Real NVP LRMF: held-out objective at the end (Sec. 4: converges to 0; '
        f'read as within {_EPS})', '~0', LRMF_MOONS, Value('test_objective', 0.0, _EPS)),
    Row('lrmf', 'moons, Real NVP LRMF: Eq. 3 on 20,000 fresh points per domain (Sec. 4: '
        f'converges to 0; read as within {_EPS})', '~0', LRMF_MOONS,
        Value('fresh_objective', 0.0, _EPS)),
    Row('lrmf', 'moons, Real NVP LRMF: share of seeds flagged converged on the 5000 test points '
        '(|L| + 1.96 SE <= eps)', '1 (every run)', LRMF_MOONS, Value('converged', 1.0)),
    Row('lrmf', 'moons, Real NVP LRMF: share of seeds flagged converged whose fresh-data '
        'objective is beyond 2 eps (issue 16: a flag to trust)', '0', LRMF_MOONS,
        Value('converged_but_fresh_off', 0.0)),
    Row('lrmf', 'moons, Real NVP LRMF: E_bias of Lemma 2.2 as estimated by the run', '-',
        LRMF_MOONS, Value('e_bias_estimate', None)),
    Row('lrmf', 'moons, FFJORD LRMF: held-out objective at the end (Sec. 4: converges to 0; '
        f'read as within {_EPS})', '~0', LRMF_MOONS_FFJORD, Value('test_objective', 0.0, _EPS)),
    Row('lrmf', 'moons, FFJORD LRMF: Eq. 3 on 20,000 fresh points per domain (Sec. 4: '
        f'converges to 0; read as within {_EPS})', '~0', LRMF_MOONS_FFJORD,
        Value('fresh_objective', 0.0, _EPS)),
    Row('lrmf', 'moons, FFJORD LRMF: share of seeds flagged converged on the 5000 test points',
        '1 (every run)', LRMF_MOONS_FFJORD, Value('converged', 1.0)),
    Row('lrmf', 'moons, FFJORD LRMF: share of seeds flagged converged whose fresh-data '
        'objective is beyond 2 eps', '0', LRMF_MOONS_FFJORD, Value('converged_but_fresh_off', 0.0)),
    Row('lrmf', 'moons, FFJORD LRMF: 1-NN accuracy of T(A) (App. 8.5: "on par with Real NVP", '
        '0.99 in Fig. 4)', 'on par with Real NVP', LRMF_MOONS_FFJORD,
        Value('one_nn_accuracy', None)),
    Row('lrmf', 'moons, FFJORD LRMF: E_bias of Lemma 2.2 as estimated by the run', '-',
        LRMF_MOONS_FFJORD, Value('e_bias_estimate', None)),
    *(row for run, angle in zip(LRMF_MOONS_ROTATED, ROTATIONS) for row in (
        Row('lrmf', f'moons rotated {angle} deg (the paper: 50), Real NVP LRMF: Eq. 3 on 20,000 '
            f'fresh points per domain (Sec. 4: converges to 0; read as within {_EPS})', '~0',
            run, Value('fresh_objective', 0.0, _EPS)),
        Row('lrmf', f'moons rotated {angle} deg, Real NVP LRMF: share of seeds flagged converged '
            'whose fresh-data objective is beyond 2 eps', '0', run,
            Value('converged_but_fresh_off', 0.0)),
        Row('lrmf', f'moons rotated {angle} deg, Real NVP LRMF: share of seeds flagged converged '
            'on the 5000 test points', '-', run, Value('converged', None)),
        Row('lrmf', f'moons rotated {angle} deg, Real NVP LRMF: 1-NN accuracy of T(A)', '-', run,
            Value('one_nn_accuracy', None)),
        Row('lrmf', f'moons rotated {angle} deg, Real NVP LRMF: E_bias of Lemma 2.2 as estimated',
            '-', run, Value('e_bias_estimate', None)))),
    Row('lrmf', 'moons, Gaussian (affine) LRMF: held-out objective', '~0', LRMF_MOONS_GAUSSIAN,
        Value('test_objective', 0.0, _EPS)),
    Row('lrmf', 'blobs, Gaussian (affine) LRMF: held-out objective (Fig. 8)', '~0', LRMF_BLOBS,
        Value('test_objective', 0.0, _EPS)),
    Row('lrmf', 'blobs, Gaussian LRMF: \\|cov(T(A)) - cov(B)\\| on training data (Ex. 2.1: '
        'moments match; read as within 0.01)', '0', LRMF_BLOBS,
        Value('train_covariance_error', 0.0, 0.01)),
    Row('lrmf', 'moons: LRMF beats back-to-back F o G^-1 on 1-NN (Fig. 4: 0.99 vs 0.91); paired '
        'difference back-to-back - LRMF', '< 0', LRMF_BASELINES,
        Ordering('one_nn_accuracy/back_to_back', 'one_nn_accuracy/lrmf')),
    Row('lrmf', 'moons, back-to-back F o G^-1 of two Real NVP densities: 1-NN (Fig. 4)',
        '0.91 +- 0.05', LRMF_BASELINES, Value('one_nn_accuracy/back_to_back', 0.91)),
    Row('lrmf', 'moons, LRMF in the baselines run: 1-NN (Fig. 4)', '0.99 +- 0.0003',
        LRMF_BASELINES, Value('one_nn_accuracy/lrmf', 0.99)),
    Row('lrmf', 'moons, MMD-trained Real NVP T: 1-NN (Fig. 4)', '0.78 / 0.72', LRMF_BASELINES,
        Value('one_nn_accuracy/mmd', None,
              not_comparable='the figure text is ambiguous (0.78 or 0.72)')),
    Row('lrmf', 'moons, EMD (Sinkhorn divergence)-trained Real NVP T: 1-NN (Fig. 4)',
        '0.72 / 0.78', LRMF_BASELINES,
        Value('one_nn_accuracy/emd', None,
              not_comparable='the figure text is ambiguous (0.72 or 0.78)')),
    Row('lrmf', 'moons, SN-GAN alignment: 1-NN at the end (Fig. 4: varies over training)',
        '0.7 ~ 1.0', LRMF_BASELINES,
        Value('one_nn_accuracy/adversarial', None, not_comparable='the paper gives a range')),
    Row('lrmf', 'surfaces (S-curve -> Swiss roll; stand-in for meshes): LRMF keeps more kNN '
        'than F o G^-1 (Sec. 4 setup 2); paired difference F o G^-1 - LRMF', '< 0',
        LRMF_SURFACES, Ordering('knn_preservation/back_to_back', 'knn_preservation/lrmf')),
    Row('lrmf', 'surfaces: kNN (k=10) kept by LRMF', 'qualitative', LRMF_SURFACES,
        Value('knn_preservation/lrmf', None)),
    Row('lrmf', 'surfaces: LRMF held-out objective', '~0', LRMF_SURFACES,
        Value('test_objective/lrmf', 0.0, _EPS)),
    Row('lrmf', 'surfaces reversed (Swiss roll -> S-curve): LRMF keeps more kNN than F o G^-1; '
        'paired difference F o G^-1 - LRMF', '< 0', LRMF_SURFACES_REVERSE,
        Ordering('knn_preservation/back_to_back', 'knn_preservation/lrmf')),
    Row('lrmf', 'digit embeddings (sklearn digits -> MNIST 16x16 in a shared VAE latent): '
        'target accuracy on decoded LRMF T(A) (setup 3)', '0.55', LRMF_DIGITS,
        Value('accuracy/lrmf', 0.55, not_comparable='data (paper: USPS -> MNIST) and '
              'autoencoder (here an MLP VAE-GAN on 16x16; the paper does not give its '
              'VAE-GAN\'s architecture) differ')),
    Row('lrmf', 'digit embeddings: EMD-transported codes (setup 3)', '0.47', LRMF_DIGITS,
        Value('accuracy/emd', 0.47, not_comparable='data and model differ (as above)')),
    Row('lrmf', 'digit embeddings: CORAL-aligned codes (setup 3)', '0.48', LRMF_DIGITS,
        Value('accuracy/coral', 0.48, not_comparable='data and model differ (as above)')),
    Row('lrmf', 'digit embeddings: LRMF above EMD (setup 3: .55 vs .47); paired difference '
        'EMD - LRMF', '< 0', LRMF_DIGITS, Ordering('accuracy/emd', 'accuracy/lrmf')),
    Row('lrmf', 'digit embeddings: LRMF above CORAL (setup 3: .55 vs .48); paired difference '
        'CORAL - LRMF', '< 0', LRMF_DIGITS, Ordering('accuracy/coral', 'accuracy/lrmf')),
    Row('lrmf', 'digit embeddings: LRMF held-out objective on the codes ("attained zero")', '~0',
        LRMF_DIGITS, Value('test_objective', 0.0, _EPS)),
    Row('lrmf', 'Glow LRMF in pixel space (sklearn digits -> MNIST; paper: USPS -> MNIST at '
        '32x32): share of seeds flagged converged (setup 4, Fig. 6b: it is not)', '0',
        LRMF_GLOW, Value('converged', 0.0)),
    Row('lrmf', 'Glow LRMF in pixel space: held-out objective (Fig. 6b: stalls above 0)', '> 0',
        LRMF_GLOW, Value('test_objective', None, not_comparable='the paper gives no number')),
    Row('lrmf', 'Example 2.2: slope a of sqrt(-log\\|dL/dmu\\|) = a mu + b (Fig. 7; read as '
        'within 0.01)', '0.6', LRMF_VANISHING, Value('a', 0.6, 0.01)),
    Row('lrmf', 'Example 2.2: intercept b (Fig. 7; within 0.05)', '-1.168', LRMF_VANISHING,
        Value('b', -1.168, 0.05)),
    Row('lrmf', 'Example 2.2: correlation R of the fit (Fig. 7; within 0.001)', '0.99996',
        LRMF_VANISHING, Value('r', 0.99996, 1e-3)),
)
"""LRMF (papers/lrmf.txt)."""

_MI_TRUE = 16.61  # -dim/2 log(1 - rho^2) for dim 20, rho 0.9 (fdre Sec. 5.2)

FDRE_ROWS: tuple[Row, ...] = (
    Row('fdre', 'toy N(0,I) vs N([3,3],I): featurized (separate) more accurate than the input-'
        'space classifier (Fig. 2); paired difference of MSE of log r on |log r| <= 5, separate '
        '- baseline', '< 0', FDRE_GAUSSIANS,
        Ordering('log_ratio_mse_overlap/separate', 'log_ratio_mse_overlap/baseline')),
) + tuple(
    Row('fdre', f'toy Gaussians: MSE of log r(x) on test points with |log r| <= 5, {mode} '
        '(Fig. 2, qualitative)', 'qualitative', FDRE_GAUSSIANS,
        Value(f'log_ratio_mse_overlap/{mode}', None))
    for mode in ('baseline', 'separate', 'joint_alpha_0_9', 'discriminative')
) + tuple(
    Row('fdre', f'MI of 20-d Gaussians, rho=0.9: {mode} estimate (Fig. 4/9; true MI '
        f'{_MI_TRUE})', f'{_MI_TRUE} (true)', FDRE_MI,
        Value(f'mi/{mode}', None, not_comparable='the paper plots estimates, the true MI is '
              'the reference (see the ordering rows)'))
    for mode in ('baseline', 'separate', 'joint_alpha_0_1', 'joint_alpha_0_5', 'joint_alpha_0_9',
                 'discriminative')
) + (
    Row('fdre', 'MI: separate closer to the true MI than the baseline (Fig. 4); paired '
        'difference of |error|, separate - baseline', '< 0', FDRE_MI,
        Ordering('mi_abs_error/separate', 'mi_abs_error/baseline')),
    Row('fdre', '2-D mixture domain adaptation: unweighted logistic regression test error '
        '(Table 8)', '0.236 +- 0.0456', FDRE_DA, Value('test_error/unweighted', 0.236)),
    Row('fdre', '2-D mixture: KMM IW(x) test error (Table 8)', '0.163 +- 0.0615', FDRE_DA,
        Value('test_error/kmm/iw_x', 0.163)),
    Row('fdre', '2-D mixture: KMM IW(z) test error (Table 8)', '0.0408 +- 0.0443', FDRE_DA,
        Value('test_error/kmm/iw_z', 0.0408)),
    Row('fdre', '2-D mixture: KLIEP IW(x) test error (Table 8)', '0.163 +- 0.0548', FDRE_DA,
        Value('test_error/kliep/iw_x', 0.163)),
    Row('fdre', '2-D mixture: KLIEP IW(z) test error (Table 8)', '0.125 +- 0.0269', FDRE_DA,
        Value('test_error/kliep/iw_z', 0.125)),
    Row('fdre', '2-D mixture: KMM IW(z) below IW(x) (Table 8); paired difference', '< 0',
        FDRE_DA, Ordering('test_error/kmm/iw_z', 'test_error/kmm/iw_x')),
    Row('fdre', '2-D mixture: KLIEP IW(z) below IW(x) (Table 8); paired difference', '< 0',
        FDRE_DA, Ordering('test_error/kliep/iw_z', 'test_error/kliep/iw_x')),
) + tuple(
    Row('fdre', f'breast cancer (sklearn table; paper: UCI), biased source, RBF SVM C={c}: '
        f'{name} test error (Table 9)', paper, FDRE_BREAST_CANCER,
        Value(f'test_error/{key}/C_{c}', float(paper.split()[0]),
              not_comparable='the paper\'s biased sampling and split sizes are not given'))
    for c, name, key, paper in (
        ('1', 'unweighted', 'unweighted', '0.537 +- 0.167'),
        ('1', 'KMM IW(x)', 'kmm/iw_x', '0.532 +- 0.198'),
        ('1', 'KMM IW(z)', 'kmm/iw_z', '0.418 +- 0.221'),
        ('1', 'KLIEP IW(x)', 'kliep/iw_x', '0.589 +- 0.121'),
        ('1', 'KLIEP IW(z)', 'kliep/iw_z', '0.55 +- 0.177'))
) + (
    Row('fdre', 'breast cancer, C=1: KMM IW(z) below IW(x) (Table 9); paired difference', '< 0',
        FDRE_BREAST_CANCER, Ordering('test_error/kmm/iw_z/C_1', 'test_error/kmm/iw_x/C_1')),
) + tuple(
    Row('fdre', f'MNIST diff-digits targeted generation (14x14 Real NVP; paper: 28x28 MAF), '
        f'perc={perc}: fraction of target samples, {name} (Table 2)', paper, FDRE_TARGETED,
        Value(f'perc_{perc}/{key}', float(paper.split()[0]),
              not_comparable='flow and image size differ (paper: MAF on 28x28)'))
    for perc, name, key, paper in (
        ('0.1', 'SIR IW(z)', 'iw_z', '0.447 +- 0.020'),
        ('0.1', 'SIR IW(x)', 'iw_x', '0.441 +- 0.002'),
        ('0.1', 'regular sampling', 'regular', '0.406 +- 0.055'),
        ('1', 'SIR IW(z)', 'iw_z', '0.860 +- 0.004'),
        ('1', 'SIR IW(x)', 'iw_x', '0.754 +- 0.007'),
        ('1', 'regular sampling', 'regular', '0.720 +- 0.035'))
) + tuple(
    Row('fdre', f'targeted MNIST, perc={perc}: SIR IW(z) above IW(x) (Table 2); paired '
        'difference IW(x) - IW(z)', '< 0', FDRE_TARGETED,
        Ordering(f'perc_{perc}/iw_x', f'perc_{perc}/iw_z'))
    for perc in ('0.1', '1')
) + tuple(
    Row('fdre', f'Importance-weighted augmentation, MNIST 14x14 (paper: Omniglot, DAGAN, CNN): '
        f'test accuracy, {name} (Table 3)', paper, FDRE_AUGMENTATION,
        Value(f'accuracy/{key}', float(paper.split()[0]),
              not_comparable='data, generator and classifier differ'))
    for name, key, paper in (
        ('data only', 'data_only', '0.756 +- 0.001'),
        ('synthetic only', 'synthetic_only', '0.557 +- 0.003'),
        ('mixture', 'mixture', '0.767 +- 0.003'),
        ('mixture + IW(x)', 'mixture_iw_x', '0.765 +- 0.005'),
        ('mixture + IW(z)', 'mixture_iw_z', '0.784 +- 0.007'))
) + (
    Row('fdre', 'augmentation: mixture + IW(z) above mixture (Table 3); paired difference '
        'mixture - mixture + IW(z)', '< 0', FDRE_AUGMENTATION,
        Ordering('accuracy/mixture', 'accuracy/mixture_iw_z')),
)
"""Featurized density ratio estimation (papers/fdre.txt)."""

_AF_MNIST = 'MNIST vs inverted-and-squared MNIST (stand-in for Maps)'
_AF_DATA = 'data differ (paper: Maps)'
_AF_ROTATED = 'MNIST vs MNIST turned a quarter (a pairing that is not pixel-wise)'
_AF_ROTATED_DATA = 'data differ (paper: Maps; here a spatial permutation of MNIST digits)'
_AF_GAMMA = ('MNIST vs its square root (control: an order-preserving pixel-wise pairing, which '
             'increasing couplings represent)')
_AF_GAMMA_DATA = 'data differ (paper: Maps; here a control task of ours)'
_AF_CHANCE = ('a chance level of ours (every test digit sent to the true pair of another), not '
              'in the paper: a model above it has not found the pairing')
_AF_UDA_DATA = ('data differ: sklearn 8x8 digits upsampled stand in for USPS, 16x16, logistic '
                'regression on translated pixels, no CyCADA losses')

ALIGNFLOW_ROWS: tuple[Row, ...] = tuple(
    Row('alignflow', f'{_AF_MNIST}: {name} paired test MSE {direction} (Table 1)', paper,
        ALIGNFLOW_MNIST, Value(f'mse_{key_dir}/{key}', float(paper), not_comparable=_AF_DATA))
    for direction, key_dir, rows in (
        ('A->B', 'a_to_b', (('CycleGAN', 'cyclegan', '0.0245'),
                            ('AF (ADV only)', 'adversarial', '0.0385'),
                            ('AF (Hybrid, lam chosen on validation)', 'hybrid_best', '0.0209'),
                            ('AF (MLE only)', 'mle', '0.0452'))),
        ('B->A', 'b_to_a', (('CycleGAN', 'cyclegan', '0.0953'),
                            ('AF (ADV only)', 'adversarial', '0.1123'),
                            ('AF (Hybrid)', 'hybrid_best', '0.0897'),
                            ('AF (MLE only)', 'mle', '0.1746'))))
    for name, key, paper in rows
) + tuple(
    Row('alignflow', f'{_AF_MNIST}: hybrid below {other_name} {direction} (Table 1); paired '
        f'difference hybrid - {other_name}', '< 0', ALIGNFLOW_MNIST,
        Ordering(f'mse_{key_dir}/hybrid_best', f'mse_{key_dir}/{other}'))
    for direction, key_dir in (('A->B', 'a_to_b'), ('B->A', 'b_to_a'))
    for other_name, other in (('ADV only', 'adversarial'), ('MLE only', 'mle'),
                              ('CycleGAN', 'cyclegan'))
) + (
    Row('alignflow', f'{_AF_MNIST}: max \\|G_BA(G_AB(a)) - a\\| of hybrid AF in float64 (Prop. 1: '
        'exact; read as below 1e-6)', '0', ALIGNFLOW_MNIST,
        Value('max_cycle_error_float64_a/hybrid_lam0.001', 0.0, 1e-6)),
    Row('alignflow', f'{_AF_MNIST}: max cycle error of CycleGAN (approximate)', '> 0',
        ALIGNFLOW_MNIST, Value('max_cycle_error_float64_a/cyclegan', None,
                               not_comparable='the paper gives no number')),
) + tuple(
    Row('alignflow', f'{task}: {name} paired test MSE {direction} (Table 1)', paper, run,
        Value(f'mse_{key_dir}/{key}', float(paper), not_comparable=data_note))
    for task, run, data_note in ((_AF_ROTATED, ALIGNFLOW_MNIST_ROTATED, _AF_ROTATED_DATA),
                                 (_AF_GAMMA, ALIGNFLOW_MNIST_GAMMA, _AF_GAMMA_DATA))
    for direction, key_dir, rows in (
        ('A->B', 'a_to_b', (('CycleGAN', 'cyclegan', '0.0245'),
                            ('AF (Hybrid)', 'hybrid_best', '0.0209'))),
        ('B->A', 'b_to_a', (('CycleGAN', 'cyclegan', '0.0953'),
                            ('AF (Hybrid)', 'hybrid_best', '0.0897'))))
    for name, key, paper in rows
) + tuple(
    Row('alignflow', f'{task}: hybrid AlignFlow paired MSE below CycleGAN {direction} '
        '(Table 1); paired difference hybrid - CycleGAN', '< 0', run,
        Ordering(f'mse_{key_dir}/hybrid_best', f'mse_{key_dir}/cyclegan'))
    for task, run in ((_AF_ROTATED, ALIGNFLOW_MNIST_ROTATED), (_AF_GAMMA, ALIGNFLOW_MNIST_GAMMA))
    for direction, key_dir in (('A->B', 'a_to_b'), ('B->A', 'b_to_a'))
) + tuple(
    Row('alignflow', f'{task}: paired test MSE of a wrong pairing {direction} (chance level)',
        '-', run, Value(f'mse_wrong_pair/{key_dir}', None, not_comparable=_AF_CHANCE))
    for task, run in ((_AF_MNIST, ALIGNFLOW_MNIST), (_AF_ROTATED, ALIGNFLOW_MNIST_ROTATED),
                      (_AF_GAMMA, ALIGNFLOW_MNIST_GAMMA))
    for direction, key_dir in (('A->B', 'a_to_b'), ('B->A', 'b_to_a'))
) + tuple(
    Row('alignflow', f'moons vs moons rotated 50 deg (2-D toy): hybrid below {other_name} '
        f'{direction}; paired difference of MSE', '< 0', ALIGNFLOW_MOONS,
        Ordering(f'mse_{key_dir}/hybrid_best', f'mse_{key_dir}/{other}'))
    for direction, key_dir in (('A->B', 'a_to_b'), ('B->A', 'b_to_a'))
    for other_name, other in (('ADV only', 'adversarial'), ('MLE only', 'mle'))
) + tuple(
    Row('alignflow', f'{direction_name}: {name}, target test accuracy (Table 2, {paper_dir})',
        paper, ALIGNFLOW_ADAPTATION,
        Value(f'accuracy/{key_dir}/{key}', float(paper.split()[0]), not_comparable=_AF_UDA_DATA))
    for direction_name, key_dir, paper_dir, rows in (
        ('MNIST -> sklearn digits', 'a_to_b', 'MNIST->USPS',
         (('source only', 'source_only', '0.822 +- 0.008'),
          ('AlignFlow (hybrid)', 'alignflow', '0.962 +- 0.002'),
          ('target only', 'target_only', '0.963 +- 0.001'))),
        ('sklearn digits -> MNIST', 'b_to_a', 'USPS->MNIST',
         (('source only', 'source_only', '0.696 +- 0.038'),
          ('AlignFlow (hybrid)', 'alignflow', '0.967 +- 0.001'),
          ('target only', 'target_only', '0.992 +- 0.001'))))
    for name, key, paper in rows
) + tuple(
    Row('alignflow', f'{direction_name}: AlignFlow above source only (Table 2); paired '
        'difference source only - AlignFlow', '< 0', ALIGNFLOW_ADAPTATION,
        Ordering(f'accuracy/{key_dir}/source_only', f'accuracy/{key_dir}/alignflow'))
    for direction_name, key_dir in (('MNIST -> sklearn digits', 'a_to_b'),
                                    ('sklearn digits -> MNIST', 'b_to_a'))
)
"""AlignFlow (papers/alignflow.txt)."""

ROWS = LRMF_ROWS + FDRE_ROWS + ALIGNFLOW_ROWS
"""Every reported number, in report order."""


def runs_of(rows: Sequence[Row]) -> list[Run]:
  """The distinct runs of ``rows``, in row order."""
  return list({row.run.name: row.run for row in rows}.values())


# ---------------------------------------------------------------------------------------------
# Running.


def side_by_side(run: Run, tier: str) -> bool:
  """Whether ``run``'s experiment trains its seeds side by side in one program."""
  return load_config(run, tier).experiment in launch.SEEDS_SIDE_BY_SIDE


def load_config(run: Run, tier: str, seeds: Sequence[int] | None = None):
  """``run``'s config of ``tier`` with its overrides (and ``seeds`` when given), validated
  against the config file's own values (:func:`experiments.launch.point_config`, the one way
  overrides are applied to a config file)."""
  point = dict(run.overrides(tier))
  if seeds is not None:
    point['seeds'] = tuple(seeds)
  return launch.point_config(run.spec(tier), point)[0]


def _read(path: str) -> dict | None:
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _parts(run: Run, tier: str, workdir: str) -> list[tuple[str, tuple[int, ...]]]:
  """``(folder, seeds)`` of each invocation of ``run``: one, or one per seed."""
  seeds = run.seeds(tier)
  if side_by_side(run, tier):
    return [(workdir, seeds)]
  return [(os.path.join(workdir, f'seed_{s}'), (s,)) for s in seeds]


def per_seed_results(run: Run, tier: str, workdir: str, execute: bool, environment: str = ''
                     ) -> tuple[list[dict] | None, float | None]:
  """``run``'s per-seed metrics and its wall time (seconds, compilation included).

  Finished seeds are read from ``workdir``; the others are run when ``execute`` (resuming
  from their checkpoints) and skipped otherwise, which gives ``(None, None)``. The wall time
  is that of the invocations that trained (``wall.json``, with the ``environment`` they
  ran in: :func:`measured_in`), summed over seeds.
  """
  per_seed, wall = [], 0.0
  for folder, part_seeds in _parts(run, tier, workdir):
    results = _read(os.path.join(folder, 'results.json'))
    if results is None:
      if not execute:
        return None, None
      start = time.time()
      launch.run_experiment(load_config(run, tier, part_seeds), folder,
                            defaults=launch.default_config(run.spec(tier)))
      with open(os.path.join(folder, 'wall.json'), 'w') as f:
        json.dump({'seconds': time.time() - start, 'environment': environment}, f)
      logging.info('%s seeds %s done in %.0f s', run.name, part_seeds, time.time() - start)
      results = _read(os.path.join(folder, 'results.json'))  # as a later read sees them
    timing = _read(os.path.join(folder, 'wall.json')) or {'seconds': results.get('seconds', 0)}
    wall += float(timing['seconds'])
    per_seed += results.get('per_seed', [results])
  return per_seed, wall


def measured_in(run: Run, tier: str, workdir: str) -> str | None:
  """The environment ``run``'s wall times were measured in (as :func:`per_seed_results`
  recorded it), ``None`` when no invocation recorded one."""
  recorded = {(_read(os.path.join(folder, 'wall.json')) or {}).get('environment')
              for folder, _ in _parts(run, tier, workdir)} - {None, ''}
  return '; '.join(sorted(recorded)) or None


def header_environment(environments: dict[str, list[str]], current: str) -> str:
  """The header's environment: the one every run was measured in, or each with its runs
  (``environments``: environment -> run names); ``current`` when none was recorded."""
  if not environments:
    return current
  if len(environments) == 1:
    return next(iter(environments))
  return ' // '.join(f'{env} [runs: {", ".join(names)}]' for env, names in environments.items())


# ---------------------------------------------------------------------------------------------
# The report.

_COLUMNS = ('method', 'claim', 'paper', 'ours (mean +- SE over seeds)', 'verdict', 'run',
            'config', 'command')


def _cells(line: str) -> list[str]:
  return [cell.strip() for cell in re.split(r'(?<!\\)\|', line)[1:-1]]


def previous_rows(report: str) -> dict[tuple[str, str], dict[str, str]]:
  """``(method, escaped claim) -> {column: cell}`` of the rows table of an existing report
  (rows that say ``not run`` are left out)."""
  rows, columns = {}, None
  for line in report.splitlines():
    if not line.startswith('|') or line.startswith('|---'):
      continue
    cells = _cells(line)
    if cells[:2] == ['method', 'claim']:
      columns = cells
      continue
    if cells[0] == 'run':  # the runs table: no rows of claims below it
      columns = None
    if columns is None:
      continue
    record = dict(zip(columns, cells))
    if record.get(_COLUMNS[3], 'not run') != 'not run' and 'claim' in record:
      rows[record['method'], record['claim']] = record
  return rows


def environment_line() -> str:
  """Versions, Python, machine and devices, for the report header."""
  import jax  # pylint: disable=g-import-not-at-top
  versions = []
  for name in REPORTED_PACKAGES:
    try:
      versions.append(f'{name} {importlib.metadata.version(name)}')
    except importlib.metadata.PackageNotFoundError:
      pass
  devices = jax.devices()
  return (f'{", ".join(versions)}; Python {platform.python_version()}; {platform.machine()} '
          f'{platform.system()}, {os.cpu_count()} CPU cores; devices: {len(devices)} x '
          f'{devices[0].device_kind}')


def report_lines(tier: str, results: dict[str, tuple[list[dict] | None, float | None]],
                 previous: dict[tuple[str, str], dict[str, str]], environment: str,
                 rows: Sequence[Row] = ROWS, failures: dict[str, str] | None = None
                 ) -> list[str]:
  """The report of ``tier``: a rows table (every row of ``rows``, from ``results``, run
  name -> (per-seed metrics, wall), else ``failed: <error>`` for the runs of ``failures``,
  else from ``previous``, else ``not run``; rows of runs that ``tier`` does not run point to
  the tier that does) and a runs table (sizes, seeds, wall time and command of each run)."""
  failures = failures or {}
  walls = {name: wall for name, (_, wall) in results.items() if wall is not None}
  row_lines, counts = [], {}
  for row in rows:
    claim = row.claim.replace('|', '\\|')
    per_seed, _ = results.get(row.run.name, (None, None))
    if tier not in row.run.tiers:
      ours = f'{" / ".join(row.run.tiers)} tier only'
      judged = f'not comparable: not run in this tier ({row.run.paper_cost})'
    elif per_seed is not None:
      ours, judged = verdict(row.check, per_seed, row.paper)
    elif row.run.name in failures:
      ours, judged = 'failed: ' + failures[row.run.name].replace('|', '/'), '-'
    else:
      record = previous.get((row.method, claim), {})
      ours, judged = record.get(_COLUMNS[3], 'not run'), record.get('verdict', '-')
    kind = judged.split(':')[0]
    counts[kind] = counts.get(kind, 0) + 1
    row_lines.append(f'| {row.method} | {claim} | {row.paper} | {ours} | {judged} | '
                     f'{row.run.name} | `{row.run.spec(tier)}` | '
                     f'`python -m experiments.reproduce --tier={tier} --runs={row.run.name}` |')
  total = sum(walls.values())
  lines = ['# Reproduction report', '',
           f'Tier **{tier}**, regenerated by `python -m experiments.reproduce --tier={tier}` '
           '(rows and runs: `experiments/reproduce.py`). Every number is a mean +- standard '
           'error over seeds; a row with an ordering claim shows the paired difference over '
           f'seeds and its one-sided paired t-test p-value (matches at p < {SIGNIFICANCE}); a '
           "value row matches when the paper's number lies in our 95% Student-t interval, "
           "widened by the tolerance its claim states and by half a unit in the paper's last "
           'printed digit.', '',
           f'- Environment: {environment}.',
           f'- Total wall time of the runs: {total:.0f} s ({total / 60:.1f} min; each run timed '
           'from its start to its results, compilation included).',
           '- Verdicts: ' + ', '.join(f'{k} {v}' for k, v in sorted(counts.items())) + '.',
           '', '| ' + ' | '.join(_COLUMNS) + ' |', '|' + '---|' * len(_COLUMNS), *row_lines]
  lines += ['', '## Runs', '',
            '| run | config | seeds | sizes of this tier | paper tier | wall (s) | command |',
            '|---|---|---|---|---|---|---|']
  for run in runs_of(rows):
    wall = walls.get(run.name)
    sizes = run.fast_note if tier == 'fast' else 'the paper\'s sizes'
    command = run.command(tier)
    if tier not in run.tiers:
      sizes, command = 'not run in this tier', run.command(run.tiers[0])
    lines.append(f'| {run.name} | `{run.spec(tier)}` | {len(run.seeds(tier))} | {sizes} | '
                 f'{run.paper_cost} | {"-" if wall is None else f"{wall:.0f}"} | '
                 f'`{command}` |')
  return lines


_TIER = flags.DEFINE_enum('tier', 'fast', TIERS, 'Which sizes to run (see the module doc).')
_RUNS = flags.DEFINE_list('runs', None, 'Run only these runs (names in the report\'s runs '
                          'table); the other rows keep their cells from the existing report.')
_WORKDIR = flags.DEFINE_string('workdir', 'runs/reproduce', 'Where the runs go '
                               '(<workdir>/<tier>/<run>).')
_REPORT = flags.DEFINE_string('report', None, 'The report to (re)write; default '
                              'REPRODUCTION.md (fast tier) or REPRODUCTION_paper.md.')
_CACHE = flags.DEFINE_string(
    'compilation_cache', None,
    "XLA's persistent compilation cache directory (default <workdir>/<tier>/xla_cache; "
    "'none': off). Runs clear JAX's in-memory caches when they end, and per-seed runs build "
    'their programs anew for every seed: the cache is where the later runs and seeds find '
    'them. The report header says whether it held programs when the report started.')


def cache_note(directory: str | None) -> str:
  """The header's words on the persistent compilation cache ``directory`` (``None``: off),
  read before the runs start: an empty cache means the wall times include every compilation."""
  if directory is None:
    return 'persistent compilation cache off'
  state = 'empty' if not (os.path.isdir(directory) and os.listdir(directory)) else (
      'holding earlier programs (wall times lower than a first run\'s)')
  return f'persistent compilation cache {directory}, {state} at the start'


def main(argv):
  del argv
  tier = _TIER.value
  every_run = {run.name: run for run in runs_of(ROWS)}
  known = {name: run for name, run in every_run.items() if tier in run.tiers}
  wanted = _RUNS.value or list(known)
  unknown = sorted(set(wanted) - set(every_run))
  if unknown:
    raise app.UsageError(f'unknown runs {unknown}; known: {sorted(every_run)}')
  elsewhere = {name: every_run[name].tiers for name in wanted if name not in known}
  if elsewhere:
    raise app.UsageError(f'runs not in the {tier} tier: {elsewhere} (run name: its tiers)')
  report = _REPORT.value or ('REPRODUCTION.md' if tier == 'fast' else 'REPRODUCTION_paper.md')
  launch.log_through_absl()
  requested = _CACHE.value or os.path.join(_WORKDIR.value, tier, 'xla_cache')
  note = cache_note(launch.compilation_cache_dir(requested))  # before the runs fill it
  launch.use_compilation_cache(requested)
  current = f'{environment_line()}; {note}'
  results, failures = {}, {}  # runs not wanted now are read from the workdir if finished there
  for name, run in known.items():
    try:
      results[name] = per_seed_results(run, tier, os.path.join(_WORKDIR.value, tier, name),
                                       execute=name in wanted, environment=current)
    except Exception as err:  # pylint: disable=broad-except
      # One failed run must not lose the others: its rows say so, the exit status too.
      logging.exception('run %s failed', name)
      failures[name] = f'{type(err).__name__}: {err}'.splitlines()[0][:200]
      results[name] = (None, None)
    # Every compiled CPU program holds memory mappings of its machine code; a process that
    # runs the whole report accumulates thousands and LLVM then fails to map more ("Unable
    # to allocate section memory", after vm.max_map_count mappings). The seeds of one run
    # share programs, so the caches are kept until the run is done; programs that later runs
    # share (AlignFlow's evaluation, per-seed runs' steps) come back from the persistent cache.
    jax.clear_caches()
    gc.collect()
  previous = {}
  if os.path.exists(report):
    with open(report) as f:
      previous = previous_rows(f.read())
  environments = {}  # the header states where the wall times were measured, run by run
  for name, run in known.items():
    recorded = measured_in(run, tier, os.path.join(_WORKDIR.value, tier, name))
    if recorded and results[name][0] is not None:
      environments.setdefault(recorded, []).append(name)
  lines = report_lines(tier, results, previous, header_environment(environments, current),
                       failures=failures)
  with open(report, 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print('\n'.join(lines))
  if failures:
    raise SystemExit(f'{len(failures)} run(s) failed: {", ".join(sorted(failures))}')


if __name__ == '__main__':
  app.run(main)
