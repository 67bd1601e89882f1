r"""RealNVP density of two moons (maximum likelihood, held-out early stopping).

Run:
  python -m experiments.run --config=configs/density_moons.py --workdir=runs/density_moons
Other flows (variants): `:maf` (5 MADE blocks of 100 with batch norm, FDRE App. E.1),
`:ffjord` (2 FFJORD transforms, tanh MLP [16, 16, 16], LRMF Sec. 8.3), `:gaussian` (the
full-covariance Gaussian family). Tiny variant for tests:
  python -m experiments.run --config=configs/density_moons.py:smoke --workdir=/tmp/smoke
Sweep (flow family x width, one job per point; `--sweep=smoke`: two tiny points for tests):
  python -m experiments.sweep --config=configs/density_moons.py --workdir=runs/density_sweep
"""

import ml_collections

from harness import sweeps

VARIANTS = ('maf', 'ffjord', 'gaussian', 'smoke')
SWEEPS = ('smoke',)
SWEEP_RESOURCES = {'timeout_min': 60, 'gpus_per_node': 1, 'cpus_per_task': 4, 'mem_gb': 16}
"""Per-job resources of the sweep's jobs (submitit; `--resources` adds e.g. a partition)."""


def get_sweep(name: str = '') -> list[dict]:
  """Flow family (RealNVP, MAF) x coupling/MADE width (64 to 512), 8 points; smoke: 2."""
  if name == 'smoke':
    return sweeps.product(sweeps.axis('variant', ['smoke']),
                          sweeps.axis('model.density.hidden', [(16,), (32, 32)]))
  if name:
    raise ValueError(f'unknown sweep {name!r} of density_moons; known: {SWEEPS}')
  widths = [(64, 64), (128, 128), (256, 256), (512, 512)]
  return sweeps.product(sweeps.axis('variant', ['', 'maf']),
                        sweeps.axis('model.density.hidden', widths))


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.experiment = 'density'
  config.seeds = (0,)
  config.side_by_side = ''  # e.g. 'train.density.lr=1e-3,3e-4' (harness.replicas)
  config.distributed = False

  config.data = ml_collections.ConfigDict()
  config.data.name = 'moons'
  config.data.options = ml_collections.ConfigDict({'n': 4000, 'seed': 0, 'noise': 0.05})
  config.data.field = 'x'
  config.data.event_shape = (2,)
  config.data.splits = (2000, 1000, 1000)  # train, validation, test

  # The density fitted (harness.models.build_density).
  config.model = ml_collections.ConfigDict()
  config.model.density = ml_collections.ConfigDict(
      {'family': 'flow', 'flow': 'realnvp', 'num_blocks': 4, 'hidden': (512, 512)})

  # The maximum-likelihood stage: its optimiser and loop (held-out early stopping).
  config.train = ml_collections.ConfigDict()
  config.train.density = ml_collections.ConfigDict({
      'num_steps': 3000, 'batch_size': 256, 'lr': 1e-3, 'weight_decay': 0.0, 'grad_clip': 0.0,
      'steps_per_dispatch': 100, 'eval_every': 100, 'patience': 10, 'checkpoint_every': 500})

  if variant == 'maf':
    config.model.density = ml_collections.ConfigDict(
        {'family': 'flow', 'flow': 'maf', 'num_blocks': 5, 'hidden': (100,), 'batch_norm': True})
  elif variant == 'ffjord':
    config.model.density = ml_collections.ConfigDict(
        {'family': 'flow', 'flow': 'ffjord', 'num_transforms': 2, 'hidden': (16, 16, 16),
         'trace_estimator': 'exact'})
    config.train.density.num_steps = 1500
  elif variant == 'gaussian':
    config.model.density = ml_collections.ConfigDict({'family': 'gaussian'})
  elif variant == 'smoke':
    config.data.options.n = 600
    config.data.splits = (400, 100, 100)
    config.model.density.update(num_blocks=2, hidden=(32, 32))
    config.train.density.update(num_steps=60, batch_size=64, steps_per_dispatch=20,
                                eval_every=20, checkpoint_every=20)
  elif variant:
    raise ValueError(f'unknown variant {variant!r} of density_moons; known: {VARIANTS}')
  return config
