r"""Runs the paper experiments and writes the reproduction report.

  python -m experiments.reproduce --workdir=runs/reproduce [--only=lrmf] [--report=REPRODUCTION.md]

Every row of :data:`ROWS` names a config (file and variant, with any size overrides that keep the
run within minutes on a 2-core CPU), the metric of its ``results.json`` to report, and the
paper's number. Runs go to ``<workdir>/<row id>`` and resume like any other run; a row whose
``results.json`` exists is read, not rerun (delete the run's folder to redo it). A row whose run
is neither here nor run now (``--only``, or a fresh checkout) keeps the value and wall time it
has in the existing report, so a partial rerun never erases finished numbers. The report is a
Markdown table "method | claim | paper | ours | wall (s) | config | command"; the wall time is
the run's ``seconds`` (of its last invocation when it was resumed).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from typing import Any

from absl import app, flags, logging
from ml_collections import config_flags

from experiments import launch

_WORKDIR = flags.DEFINE_string('workdir', 'runs/reproduce', 'Where the runs go.')
_ONLY = flags.DEFINE_enum('only', None, ['lrmf', 'fdre', 'alignflow'],
                         'Run only the rows of this method; the others keep their reported values.')
_REPORT = flags.DEFINE_string('report', 'REPRODUCTION.md', 'The report to (re)write.')


@dataclasses.dataclass(frozen=True)
class Row:
  """One reported number: a config run and the metric compared with the paper."""
  method: str
  claim: str
  paper: str
  config: str
  variant: str
  metric: str
  overrides: tuple[tuple[str, Any], ...] = ()

  @property
  def run_id(self) -> str:
    return f"{os.path.basename(self.config)[:-3]}_{self.variant or 'default'}"

  @property
  def command(self) -> str:
    spec = self.config + (f':{self.variant}' if self.variant else '')
    flags_ = ' '.join(f'--config.{k}={v}' for k, v in self.overrides)
    return f'python -m experiments.run --config={spec} --workdir=runs/{self.run_id} {flags_}'.strip()


LRMF_ROWS = (
    Row('lrmf', 'moons, Real NVP LRMF: 1-NN accuracy of T(A) (Fig. 4)', '0.99 +- 0.0003',
        'configs/lrmf_moons.py', '', 'one_nn_accuracy'),
    Row('lrmf', 'moons, no alignment (input): 1-NN accuracy (Fig. 4)', '0.96',
        'configs/lrmf_moons.py', '', 'one_nn_accuracy_identity_map'),
    Row('lrmf', 'moons, Real NVP LRMF: held-out objective at the end (Sec. 4: converges to 0)',
        '~0', 'configs/lrmf_moons.py', '', 'test_objective'),
    Row('lrmf', 'moons, Gaussian (affine) LRMF: held-out objective', '~0',
        'configs/lrmf_moons.py', 'gaussian', 'test_objective'),
    Row('lrmf', 'blobs, Gaussian (affine) LRMF: held-out objective (Fig. 8)', '~0',
        'configs/lrmf_blobs.py', '', 'test_objective'),
    Row('lrmf', 'blobs, Gaussian LRMF: |cov(T(A)) - cov(B)| on training data (Ex. 2.1: moments '
        'match)', '0', 'configs/lrmf_blobs.py', '', 'train_covariance_error'),
    Row('lrmf', 'moons, back-to-back F o G^-1 of two Real NVP densities: 1-NN (Fig. 4)',
        '0.91 +- 0.05', 'configs/lrmf_moons_baselines.py', '', 'one_nn_accuracy/back_to_back'),
    Row('lrmf', 'moons, LRMF in the baselines run (width 256): 1-NN (Fig. 4)', '0.99 +- 0.0003',
        'configs/lrmf_moons_baselines.py', '', 'one_nn_accuracy/lrmf'),
    Row('lrmf', 'moons, MMD-trained Real NVP T: 1-NN (Fig. 4; figure text ambiguous: 0.78 or 0.72)',
        '0.78 / 0.72', 'configs/lrmf_moons_baselines.py', '', 'one_nn_accuracy/mmd'),
    Row('lrmf', 'moons, EMD (Sinkhorn)-trained Real NVP T: 1-NN (Fig. 4; ambiguous as above)',
        '0.72 / 0.78', 'configs/lrmf_moons_baselines.py', '', 'one_nn_accuracy/emd'),
    Row('lrmf', 'moons, SN-GAN alignment: 1-NN at the end (Fig. 4: varies over training)',
        '0.7 ~ 1.0', 'configs/lrmf_moons_baselines.py', '', 'one_nn_accuracy/adversarial'),
    Row('lrmf', 'surfaces (S-curve -> Swiss roll; stand-in for meshes): kNN (k=10) kept by LRMF '
        '(Sec. 4 setup 2: structure preserved, qualitative)', 'qualitative',
        'configs/lrmf_surfaces.py', '', 'knn_preservation/lrmf'),
    Row('lrmf', 'surfaces: kNN kept by F o G^-1', 'qualitative', 'configs/lrmf_surfaces.py', '',
        'knn_preservation/back_to_back'),
    Row('lrmf', 'surfaces: LRMF held-out objective (not converged at this size)', '~0',
        'configs/lrmf_surfaces.py', '', 'test_objective/lrmf'),
    Row('lrmf', 'surfaces reversed (Swiss roll -> S-curve): kNN kept by LRMF', 'qualitative',
        'configs/lrmf_surfaces.py', 'reverse', 'knn_preservation/lrmf'),
    Row('lrmf', 'surfaces reversed: kNN kept by F o G^-1', 'qualitative',
        'configs/lrmf_surfaces.py', 'reverse', 'knn_preservation/back_to_back'),
    Row('lrmf', 'digit embeddings (sklearn digits -> MNIST at 16x16 in a shared VAE latent; paper: '
        'USPS -> MNIST, VAE-GAN): target accuracy of a classifier on decoded LRMF T(A) (setup 3)',
        '0.55', 'configs/lrmf_digits.py', '', 'accuracy/lrmf'),
    Row('lrmf', 'digit embeddings: classifier on decoded EMD-transported codes (setup 3)', '0.47',
        'configs/lrmf_digits.py', '', 'accuracy/emd'),
    Row('lrmf', 'digit embeddings: classifier on decoded CORAL-aligned codes (setup 3)', '0.48',
        'configs/lrmf_digits.py', '', 'accuracy/coral'),
    Row('lrmf', 'digit embeddings: McNemar p-value, LRMF vs EMD (paper: p << 1e-3 in all cases)',
        '<< 1e-3', 'configs/lrmf_digits.py', '', 'mcnemar_p/lrmf_vs_emd'),
    Row('lrmf', 'digit embeddings: McNemar p-value, LRMF vs CORAL', '<< 1e-3',
        'configs/lrmf_digits.py', '', 'mcnemar_p/lrmf_vs_coral'),
    Row('lrmf', 'digit embeddings: LRMF held-out objective on the codes (paper: "attained zero")',
        '~0', 'configs/lrmf_digits.py', '', 'test_objective'),
    Row('lrmf', 'Glow LRMF in pixel space (sklearn digits -> MNIST, 16x16; paper: USPS -> MNIST, '
        '32x32): held-out objective stalls above 0 (setup 4, Fig. 6b)', '> 0 (not converged)',
        'configs/lrmf_glow_digits.py', '', 'test_objective'),
    Row('lrmf', 'Glow LRMF in pixel space: convergence flag (the failure shows in the loss)',
        'False', 'configs/lrmf_glow_digits.py', '', 'converged'),
    Row('lrmf', 'Example 2.2: slope a of sqrt(-log|dL/dmu|) = a mu + b (Fig. 7)', '0.6',
        'configs/lrmf_vanishing_gradient.py', '', 'a'),
    Row('lrmf', 'Example 2.2: intercept b (Fig. 7)', '-1.168',
        'configs/lrmf_vanishing_gradient.py', '', 'b'),
    Row('lrmf', 'Example 2.2: correlation R of the fit (Fig. 7)', '0.99996',
        'configs/lrmf_vanishing_gradient.py', '', 'r'),
)
"""LRMF (papers/lrmf.txt)."""

_FDRE_GAUSSIANS = 'configs/fdre_gaussians.py'
_FDRE_MI = 'configs/fdre_mutual_information.py'
_FDRE_DA = 'configs/fdre_domain_adaptation.py'
FDRE_ROWS: tuple[Row, ...] = tuple(
    Row('fdre', f'toy N(0,I) vs N([3,3],I): MSE of log r(x) on test points with |log r| <= 5 '
        f'(where the data pin r down), {mode} (Fig. 2: separate most accurate, qualitative)',
        'qualitative', _FDRE_GAUSSIANS, '', f'log_ratio_mse_overlap/{mode}')
    for mode in ('baseline', 'separate', 'joint_alpha_0_9', 'discriminative')
) + tuple(
    Row('fdre', f'MI of 20-d Gaussians, rho=0.9: {mode} (Fig. 4/9: separate closest to the true '
        'MI, joint better with larger alpha)', '16.61 (true)', _FDRE_MI, '', f'mi/{mode}')
    for mode in ('baseline', 'separate', 'joint_alpha_0_1', 'joint_alpha_0_5', 'joint_alpha_0_9',
                 'discriminative')
) + (
    Row('fdre', '2-D mixture domain adaptation: unweighted logistic regression test error '
        '(Table 8)', '0.236 +- 0.0456', _FDRE_DA, '', 'test_error/unweighted'),
    Row('fdre', '2-D mixture: KMM IW(x) test error (Table 8)', '0.163 +- 0.0615', _FDRE_DA, '',
        'test_error/kmm/iw_x'),
    Row('fdre', '2-D mixture: KMM IW(z) test error (Table 8)', '0.0408 +- 0.0443', _FDRE_DA, '',
        'test_error/kmm/iw_z'),
    Row('fdre', '2-D mixture: KLIEP IW(x) test error (Table 8)', '0.163 +- 0.0548', _FDRE_DA, '',
        'test_error/kliep/iw_x'),
    Row('fdre', '2-D mixture: KLIEP IW(z) test error (Table 8)', '0.125 +- 0.0269', _FDRE_DA, '',
        'test_error/kliep/iw_z'),
) + tuple(
    Row('fdre', f'breast cancer (sklearn 30-feature table), biased source, RBF SVM C={c}: {name} '
        'test error (Table 9)', paper, _FDRE_DA, 'breast_cancer', f'test_error/{key}/C_{c}')
    for c, name, key, paper in (
        ('1', 'unweighted', 'unweighted', '0.537 +- 0.167'),
        ('1', 'KMM IW(x)', 'kmm/iw_x', '0.532 +- 0.198'),
        ('1', 'KMM IW(z)', 'kmm/iw_z', '0.418 +- 0.221'),
        ('1', 'KLIEP IW(x)', 'kliep/iw_x', '0.589 +- 0.121'),
        ('1', 'KLIEP IW(z)', 'kliep/iw_z', '0.55 +- 0.177'),
        ('10', 'unweighted', 'unweighted', '0.591 +- 0.104'),
        ('10', 'KMM IW(z)', 'kmm/iw_z', '0.421 +- 0.232'))
) + tuple(
    Row('fdre', f'MNIST diff-digits targeted generation (14x14, Real NVP), perc={perc}: fraction '
        f'of target samples, {name} (Table 2)', paper, 'configs/fdre_targeted_mnist.py', '',
        f'perc_{perc}/{key}')
    for perc, name, key, paper in (
        ('0.1', 'SIR IW(z)', 'iw_z', '0.447 +- 0.020'),
        ('0.1', 'SIR IW(x)', 'iw_x', '0.441 +- 0.002'),
        ('0.1', 'regular sampling', 'regular', '0.406 +- 0.055'),
        ('1', 'SIR IW(z)', 'iw_z', '0.860 +- 0.004'),
        ('1', 'SIR IW(x)', 'iw_x', '0.754 +- 0.007'),
        ('1', 'regular sampling', 'regular', '0.720 +- 0.035'))
) + tuple(
    Row('fdre', f'MNIST diff-digits, perc=0.1: effective sample size of the {name} SIR weights '
        '(of 5000 proposals; not in the paper)', '-', 'configs/fdre_targeted_mnist.py', '',
        f'perc_0.1/{key}_effective_sample_size')
    for name, key in (('IW(z)', 'iw_z'), ('IW(x)', 'iw_x'))
) + tuple(
    Row('fdre', f'MNIST diff-digits, perc={perc}: fraction of target samples, SIR with flattened '
        f'weights (q/h)^0.2, {name} (App. D.1 flattening; the paper resamples without it)', '-',
        'configs/fdre_targeted_mnist.py', '', f'perc_{perc}/{key}_power_0.2')
    for perc in ('0.1', '1') for name, key in (('IW(z)', 'iw_z'), ('IW(x)', 'iw_x'))
) + tuple(
    Row('fdre', f'Importance-weighted augmentation, MNIST 14x14 (50 real digits per class, '
        f'per-class Real NVP generator, logistic regression; paper: Omniglot, DAGAN, CNN): test '
        f'accuracy, {name} (Table 3)', paper, 'configs/fdre_augmentation.py', '',
        f'accuracy/{key}')
    for name, key, paper in (
        ('data only', 'data_only', '0.756 +- 0.001'),
        ('synthetic only', 'synthetic_only', '0.557 +- 0.003'),
        ('mixture', 'mixture', '0.767 +- 0.003'),
        ('mixture + IW(x)', 'mixture_iw_x', '0.765 +- 0.005'),
        ('mixture + IW(z)', 'mixture_iw_z', '0.784 +- 0.007'))
)
"""Featurized density ratio estimation (papers/fdre.txt)."""

_AF_MNIST = 'MNIST vs inverted-and-squared MNIST, 16x16 (stand-in for Maps; paper values: Maps)'
_AF_MOONS = 'moons vs moons rotated 50 deg (2-D toy; paper values: Maps)'
_AF_UDA = 'configs/alignflow_digits_adaptation.py'
_AF_DATA = ('data differ: scikit-learn 8x8 digits upsampled stand in for USPS; 16x16, not 32x32; '
            'logistic regression on translated pixels, no CyCADA feature-level losses')
_AF_M2D = f'MNIST -> sklearn digits ({_AF_DATA})'
_AF_D2M = f'sklearn digits -> MNIST ({_AF_DATA})'

ALIGNFLOW_ROWS: tuple[Row, ...] = (
    Row('alignflow', f'{_AF_MNIST}: CycleGAN paired test MSE A->B (Table 1)', '0.0245',
        'configs/alignflow_mnist.py', '', 'mse_a_to_b/cyclegan'),
    Row('alignflow', f'{_AF_MNIST}: AF (ADV only) MSE A->B (Table 1)', '0.0385',
        'configs/alignflow_mnist.py', '', 'mse_a_to_b/adversarial'),
    Row('alignflow', f'{_AF_MNIST}: AF (Hybrid, lam chosen on validation) MSE A->B (Table 1)',
        '0.0209', 'configs/alignflow_mnist.py', '', 'mse_a_to_b/hybrid_best'),
    Row('alignflow', f'{_AF_MNIST}: AF (MLE only) MSE A->B (Table 1)', '0.0452',
        'configs/alignflow_mnist.py', '', 'mse_a_to_b/mle'),
    Row('alignflow', f'{_AF_MNIST}: CycleGAN MSE B->A (Table 1)', '0.0953',
        'configs/alignflow_mnist.py', '', 'mse_b_to_a/cyclegan'),
    Row('alignflow', f'{_AF_MNIST}: AF (ADV only) MSE B->A (Table 1)', '0.1123',
        'configs/alignflow_mnist.py', '', 'mse_b_to_a/adversarial'),
    Row('alignflow', f'{_AF_MNIST}: AF (Hybrid) MSE B->A (Table 1)', '0.0897',
        'configs/alignflow_mnist.py', '', 'mse_b_to_a/hybrid_best'),
    Row('alignflow', f'{_AF_MNIST}: AF (MLE only) MSE B->A (Table 1)', '0.1746',
        'configs/alignflow_mnist.py', '', 'mse_b_to_a/mle'),
    Row('alignflow', f'{_AF_MNIST}: AF (Hybrid, lam = 1e-2) MSE A->B (Table 3; our lam acts on '
        'the nats of 256 pixels, the paper\'s on 196,608)', '0.0561',
        'configs/alignflow_mnist.py', '', 'mse_a_to_b/hybrid_lam0.01'),
    Row('alignflow', f'{_AF_MNIST}: AF (Hybrid, lam = 1e-2) MSE B->A (Table 3)', '0.1457',
        'configs/alignflow_mnist.py', '', 'mse_b_to_a/hybrid_lam0.01'),
    Row('alignflow', f'{_AF_MNIST}: hybrid beats ADV-only and MLE-only, A->B (Table 1, 3)',
        'True', 'configs/alignflow_mnist.py', '', 'hybrid_beats_adversarial_and_mle/a_to_b'),
    Row('alignflow', f'{_AF_MNIST}: max |G_B->A(G_A->B(a)) - a| of hybrid AF, round trips in '
        'float64 (Prop. 1: exact in exact arithmetic)',
        '0', 'configs/alignflow_mnist.py', '', 'max_cycle_error_float64_a/hybrid_lam0.001'),
    Row('alignflow', f'{_AF_MNIST}: share of hybrid AF round trips lost to float32 sigmoid '
        'saturation (a number-format limit; none in float64)', '0', 'configs/alignflow_mnist.py',
        '', 'non_finite_cycle_fraction_float32_a/hybrid_lam0.001'),
    Row('alignflow', f'{_AF_MNIST}: hybrid beats ADV-only and MLE-only, B->A (Table 1, 3)',
        'True', 'configs/alignflow_mnist.py', '', 'hybrid_beats_adversarial_and_mle/b_to_a'),
    Row('alignflow', f'{_AF_MNIST}: max cycle error of CycleGAN (approximate)', '> 0',
        'configs/alignflow_mnist.py', '', 'max_cycle_error_float64_a/cyclegan'),
    Row('alignflow', f'{_AF_MOONS}: CycleGAN paired test MSE A->B', '0.0245 (Maps)',
        'configs/alignflow_moons.py', '', 'mse_a_to_b/cyclegan'),
    Row('alignflow', f'{_AF_MOONS}: AF (ADV only) MSE A->B', '0.0385 (Maps)',
        'configs/alignflow_moons.py', '', 'mse_a_to_b/adversarial'),
    Row('alignflow', f'{_AF_MOONS}: AF (Hybrid, lam chosen on validation) MSE A->B',
        '0.0209 (Maps)', 'configs/alignflow_moons.py', '', 'mse_a_to_b/hybrid_best'),
    Row('alignflow', f'{_AF_MOONS}: AF (MLE only) MSE A->B', '0.0452 (Maps)',
        'configs/alignflow_moons.py', '', 'mse_a_to_b/mle'),
    Row('alignflow', f'{_AF_MOONS}: hybrid beats ADV-only and MLE-only, A->B', 'True',
        'configs/alignflow_moons.py', '', 'hybrid_beats_adversarial_and_mle/a_to_b'),
    Row('alignflow', f'{_AF_MOONS}: hybrid beats ADV-only and MLE-only, B->A', 'True',
        'configs/alignflow_moons.py', '', 'hybrid_beats_adversarial_and_mle/b_to_a'),
    Row('alignflow', f'{_AF_M2D}: source only, target test accuracy (Table 2, MNIST->USPS)',
        '0.822 +- 0.008', _AF_UDA, '', 'accuracy/a_to_b/source_only'),
    Row('alignflow', f'{_AF_M2D}: AlignFlow (hybrid; steps chosen on target validation), target '
        'test accuracy (Table 2, MNIST->USPS)', '0.962 +- 0.002', _AF_UDA, '',
        'accuracy/a_to_b/alignflow'),
    Row('alignflow', f'{_AF_M2D}: target only (Table 2, MNIST->USPS)', '0.963 +- 0.001', _AF_UDA,
        '', 'accuracy/a_to_b/target_only'),
    Row('alignflow', f'{_AF_M2D}: McNemar p, AlignFlow vs source only', 'n/a', _AF_UDA, '',
        'mcnemar_p/a_to_b/alignflow_vs_source_only'),
    Row('alignflow', f'{_AF_D2M}: source only, target test accuracy (Table 2, USPS->MNIST)',
        '0.696 +- 0.038', _AF_UDA, '', 'accuracy/b_to_a/source_only'),
    Row('alignflow', f'{_AF_D2M}: AlignFlow (hybrid; steps chosen on target validation), target '
        'test accuracy (Table 2, USPS->MNIST)', '0.967 +- 0.001', _AF_UDA, '',
        'accuracy/b_to_a/alignflow'),
    Row('alignflow', f'{_AF_D2M}: target only (Table 2, USPS->MNIST)', '0.992 +- 0.001', _AF_UDA,
        '', 'accuracy/b_to_a/target_only'),
    Row('alignflow', f'{_AF_D2M}: McNemar p, AlignFlow vs source only', 'n/a', _AF_UDA, '',
        'mcnemar_p/b_to_a/alignflow_vs_source_only'),
)
"""AlignFlow (papers/alignflow.txt)."""

ROWS = LRMF_ROWS + FDRE_ROWS + ALIGNFLOW_ROWS
"""Every reported number, in report order."""


def _load_config(row: Row):
  holder = flags.FlagValues()
  spec = row.config + (f':{row.variant}' if row.variant else '')
  config_flags.DEFINE_config_file('config', spec, flag_values=holder, lock_config=False)
  holder(['reproduce'])
  config = holder.config
  for key, value in row.overrides:
    node = config
    *parents, leaf = key.split('.')
    for name in parents:
      node = node[name]
    node[leaf] = value
  return config


def _format(value: Any) -> str:
  if isinstance(value, bool):
    return str(value)
  if isinstance(value, float):
    return f'{value:.4g}'
  return str(value)


_HEADER = ('| method | claim | paper | ours | wall (s) | config | command |',
           '|---|---|---|---|---|---|---|')


def previous_values(report: str) -> dict[tuple[str, str], tuple[str, str]]:
  """``(method, escaped claim) -> (ours, wall)`` of the rows of an existing report's text.

  Reads both this table and the older one without the wall column (wall ``'-'``); rows
  that say ``not run`` are left out.
  """
  values = {}
  columns = None
  for line in report.splitlines():
    if not line.startswith('|') or line.startswith('|---'):
      continue
    cells = [cell.strip() for cell in re.split(r'(?<!\\)\|', line)[1:-1]]
    if columns is None:
      columns = cells
      continue
    record = dict(zip(columns, cells))
    if record.get('ours', 'not run') != 'not run':
      values[record['method'], record['claim']] = (record['ours'], record.get('wall (s)', '-'))
  return values


def report_lines(results: dict[str, dict],
                 previous: dict[tuple[str, str], tuple[str, str]]) -> list[str]:
  """The report: every row of :data:`ROWS` from ``results`` (run id -> results), else
  from ``previous`` (see :func:`previous_values`), else ``not run``."""
  lines = ['# Reproduction report', '',
           'Regenerated by `python -m experiments.reproduce` (rows: `experiments/reproduce.py`). '
           'Our numbers are single runs (seed 0) at the sizes of the configs, on a 2-core CPU '
           '(wall times grow when other jobs share it).',
           '', *_HEADER]
  for row in ROWS:
    run = results.get(row.run_id, {})
    claim = row.claim.replace('|', '\\|')
    if row.metric in run:
      seconds = run.get('seconds')
      ours, wall = _format(run[row.metric]), '-' if seconds is None else f'{seconds:.0f}'
    else:
      ours, wall = previous.get((row.method, claim), ('not run', '-'))
    spec = row.config + (f':{row.variant}' if row.variant else '')
    lines.append(f'| {row.method} | {claim} | {row.paper} | {ours} | {wall} | `{spec}` | '
                 f'`{row.command}` |')
  return lines


def main(argv):
  del argv
  results: dict[str, dict] = {}
  for row in ROWS:
    if row.run_id in results:
      continue
    workdir = os.path.join(_WORKDIR.value, row.run_id)
    path = os.path.join(workdir, 'results.json')
    if os.path.exists(path):
      with open(path) as f:
        results[row.run_id] = json.load(f)
    elif _ONLY.value in (None, row.method):
      start = time.time()
      results[row.run_id] = launch.run_experiment(_load_config(row), workdir)
      logging.info('%s done in %.0f s', row.run_id, time.time() - start)
  previous = {}
  if os.path.exists(_REPORT.value):
    with open(_REPORT.value) as f:
      previous = previous_values(f.read())
  lines = report_lines(results, previous)
  with open(_REPORT.value, 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print('\n'.join(lines))


if __name__ == '__main__':
  app.run(main)
