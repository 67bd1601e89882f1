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
                          sweeps.axis('model.hidden', [(16,), (32, 32)]))
  if name:
    raise ValueError(f'unknown sweep {name!r} of density_moons; known: {SWEEPS}')
  widths = [(64, 64), (128, 128), (256, 256), (512, 512)]
  return sweeps.product(sweeps.axis('variant', ['', 'maf']), sweeps.axis('model.hidden', widths))


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.experiment = 'density'
  config.seeds = (0,)
  config.side_by_side = ''  # e.g. 'train.lr=1e-3,3e-4' (harness.replicas)
  config.distributed = False

  config.data = ml_collections.ConfigDict()
  config.data.name = 'moons'
  config.data.options = ml_collections.ConfigDict({'n': 4000, 'seed': 0, 'noise': 0.05})
  config.data.field = 'x'
  config.data.event_shape = (2,)
  config.data.splits = (2000, 1000, 1000)  # train, validation, test

  config.model = ml_collections.ConfigDict()
  config.model.family = 'flow'
  config.model.flow = 'realnvp'
  config.model.num_blocks = 4
  config.model.hidden = (512, 512)

  config.train = ml_collections.ConfigDict()
  config.train.num_steps = 3000
  config.train.batch_size = 256
  config.train.lr = 1e-3
  config.train.weight_decay = 0.0
  config.train.grad_clip = 0.0
  config.train.steps_per_dispatch = 100
  config.train.eval_every = 100
  config.train.patience = 10
  config.train.checkpoint_every = 500

  if variant == 'maf':
    config.model = ml_collections.ConfigDict(
        {'family': 'flow', 'flow': 'maf', 'num_blocks': 5, 'hidden': (100,), 'batch_norm': True})
  elif variant == 'ffjord':
    config.model = ml_collections.ConfigDict(
        {'family': 'flow', 'flow': 'ffjord', 'num_transforms': 2, 'hidden': (16, 16, 16),
         'trace_estimator': 'exact'})
    config.train.num_steps = 1500
  elif variant == 'gaussian':
    config.model = ml_collections.ConfigDict({'family': 'gaussian'})
  elif variant == 'smoke':
    config.data.options.n = 600
    config.data.splits = (400, 100, 100)
    config.model.num_blocks = 2
    config.model.hidden = (32, 32)
    config.train.num_steps = 60
    config.train.batch_size = 64
    config.train.steps_per_dispatch = 20
    config.train.eval_every = 20
    config.train.checkpoint_every = 20
  elif variant:
    raise ValueError(f'unknown variant {variant!r} of density_moons; known: {VARIANTS}')
  return config
