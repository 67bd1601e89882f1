r"""LRMF Example 2.2 / Fig. 7 (Sec. 8.8): the shared-model gradient vanishes like exp(-mu^2).

delta, sigma0, the mu grid and the fit range are not in the paper; they are the
values of the authors' notebook (fit on grid points 20..79, mu in [7.2, 16.8]).

Run:
  python -m experiments.run --config=configs/lrmf_vanishing_gradient.py \
      --workdir=runs/lrmf_vanishing_gradient
Tiny variant for tests:
  python -m experiments.run --config=configs/lrmf_vanishing_gradient.py:smoke --workdir=/tmp/smoke
"""

import ml_collections

VARIANTS = ('smoke',)


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.experiment = 'lrmf.vanishing_gradient'
  config.seeds = (0,)
  config.distributed = False

  config.num_samples = 100_000  # fixed sample of B = M(delta, -delta, sigma0^2)
  config.delta = 1.0
  config.sigma0 = 0.5
  # the mu grid: num points from start to stop, both included (np.linspace)
  config.mu_grid_start = 4.0
  config.mu_grid_stop = 20.0
  config.mu_grid_num = 100
  config.fit_range = (7.2, 16.8)  # mu interval of the line fit (inclusive)
  config.quadrature_points = 20001  # exact expected gradient, for comparison

  if variant == 'smoke':
    config.num_samples = 4000
    config.mu_grid_start, config.mu_grid_stop, config.mu_grid_num = 3.0, 12.0, 19
    config.fit_range = (5.0, 12.0)
    config.quadrature_points = 2001
  elif variant:
    raise ValueError(f'unknown variant {variant!r} of lrmf_vanishing_gradient; known: {VARIANTS}')
  return config
