r"""LRMF against F o G^-1 between two surfaces in 3-D (LRMF Sec. 4 setup 2, meshes; stand-in).

The paper aligns point clouds sampled from meshes; without mesh files this setup aligns an
S-curve (A, scikit-learn make_s_curve) to a Swiss roll (B, make_swiss_roll), 2000 + 500 + 500
points each. The raw surfaces differ in scale by about 10 (S-curve ~[-1, 1] x [0, 2] x [-2, 2],
Swiss roll ~[-10, 13] x [0, 21] x [-12, 15]), so each domain is centred and divided by one
scalar, the RMS per-coordinate spread of its training split (`data.standardize`): both then have
unit mean squared coordinate and keep their shapes. M and T are Real NVP (4 coupling blocks,
MLP 2 x 256 ReLU); methods LRMF and F o G^-1; the metric is kNN preservation (k = 10; a map
that keeps the sheet's neighbourhoods scores near 1, tearing and folding lower it). Points are
coloured by the intrinsic coordinate along the surface.

Run:
  python -m experiments.run --config=configs/lrmf_surfaces.py --workdir=runs/lrmf_surfaces
Variants: `:reverse` (Swiss roll -> S-curve), `:smoke` (tiny, for tests):
  python -m experiments.run --config=configs/lrmf_surfaces.py:reverse --workdir=runs/lrmf_surfaces_reverse
"""

import ml_collections

from configs import lrmf_moons

VARIANTS = ('reverse', 'smoke')


def _surface(name: str, seed: int, n: int) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      'name': name, 'field': 'points', 'color_field': 'coordinate',
      'options': {'n': n, 'seed': seed, 'noise': 0.0}})


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  if variant not in ('',) + VARIANTS:
    raise ValueError(f'unknown variant {variant!r} of lrmf_surfaces; known: {VARIANTS}')
  config = lrmf_moons.get_config('smoke' if variant == 'smoke' else '')
  config.restarts = 1  # restarts address the moons' folding (configs/lrmf_moons.py)
  config.experiment = 'lrmf.comparison'
  config.methods = ('lrmf', 'back_to_back')
  config.knn_k = 10
  n = 3000 if variant != 'smoke' else 400
  config.data.a = _surface('s_curve', 0, n)
  config.data.b = _surface('swiss_roll', 1, n)
  config.data.standardize = True
  if variant != 'smoke':  # 500 test points serve the kNN and 1-NN metrics
    config.data.splits = (2000, 500, 500)
  if variant == 'reverse':
    config.data.a, config.data.b = config.data.b, config.data.a
  if variant != 'smoke':
    for block in (config.model.density, config.model.flow):
      block.hidden = (256, 256)
    config.train.private.update(num_steps=2000, lr=1e-3)
    config.train.joint.num_steps = 2000
  return config
