r"""LRMF vs F o G^-1, MMD, EMD and SN-GAN on the rotated moons (LRMF Sec. 4 setup 1; Fig. 3, 4).

The moons pair of configs/lrmf_moons.py (two pairs of moons, B rotated 50 degrees, labelled by
moon) with Real NVP for the density family M and for every transformation T (4 coupling blocks
spaced by permutations; MLP 2 x 256 ReLU, half the paper's width, and shorter stages, so that
all five methods fit a CPU; the report's runs table gives their wall time). Metrics on the 500-point test
splits: 1-NN accuracy of a classifier on B's labels scored on T(A) (paper: input 0.96, F o G^-1
0.91 +- 0.05, LRMF 0.99 +- 0.0003, SN-GAN 0.7-1.0), kNN preservation (k = 10), exact EMD.

Run:
  python -m experiments.run --config=configs/lrmf_moons_baselines.py --workdir=runs/lrmf_moons_baselines
Variants: `:smoke` (tiny, for tests).
"""

import ml_collections

from configs import lrmf_moons

VARIANTS = ('smoke',)


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  if variant not in ('',) + VARIANTS:
    raise ValueError(f'unknown variant {variant!r} of lrmf_moons_baselines; known: {VARIANTS}')
  config = lrmf_moons.get_config('smoke' if variant == 'smoke' else '')
  config.restarts = 1  # the baselines train once: LRMF gets no selection they lack
  config.experiment = 'lrmf.comparison'
  config.methods = ('lrmf', 'back_to_back', 'mmd', 'emd', 'adversarial')
  config.knn_k = 10
  config.data.standardize = False  # both domains are moons of the same scale
  if variant != 'smoke':  # the paper's 2000 points a domain; 500 test points serve the 1-NN
    config.data.a.options.n = config.data.b.options.n = 3000
    config.data.splits = (2000, 500, 500)
  config.mmd = ml_collections.ConfigDict({'bandwidths': (0.05, 0.1, 0.2, 0.5, 1.0)})
  # epsilon in squared distance units (the moons span about 3); 200 iterations >> max C / eps.
  config.emd = ml_collections.ConfigDict({'epsilon': 0.05, 'num_iters': 200})
  # SN-GAN (Fig. 3): T's stage and the critic's optimiser, Adam with b1 = 0.5 both.
  config.critic = ml_collections.ConfigDict({'hidden': (128, 128)})
  config.train_adversarial = ml_collections.ConfigDict({
      'num_steps': 2000, 'batch_size': 256, 'lr': 1e-4, 'b1': 0.5, 'eval_every': 100,
      'checkpoint_every': 500})
  config.train_critic = ml_collections.ConfigDict({'lr': 1e-4, 'b1': 0.5})
  # The baselines train T alone with the joint stage's settings (last parameters kept).
  config.train_baseline = ml_collections.ConfigDict(config.train_joint.to_dict())
  if variant == 'smoke':
    config.train_adversarial.update(num_steps=20, batch_size=50, eval_every=10,
                                    checkpoint_every=10)
    config.critic.hidden = (16,)
    config.emd.num_iters = 20
    return config
  for block in (config.density, config.flow):
    block.hidden = (256, 256)
  # The setting its reported numbers were measured with (not the flagship's longer stage).
  config.train_private.update(num_steps=1500, lr=1e-3)
  config.train_joint.num_steps = 2000
  config.train_baseline.num_steps = 1000
  return config
