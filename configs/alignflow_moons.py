r"""AlignFlow on 2-D toy domains: moons -> the same moons rotated (AlignFlow Sec. 3, Eq. 7).

Domain A is ``make_moons(noise=0.05)``, domain B the same points rotated by 50 degrees, so
every A point has a known pair in B; training uses disjoint halves (unpaired). Real NVP
flows (2 private + 2 shared coupling blocks, MLP 2 x 128), MLP critics, least-squares GAN
terms, adversarial-only, hybrid (lam sweep) and MLE-only AlignFlow and a CycleGAN baseline;
paired test MSE, cycle error, translation and paired-sample plots.

Run:
  python -m experiments.run --config=configs/alignflow_moons.py --workdir=runs/alignflow_moons
Variants: `:cross_entropy` (cross-entropy GAN terms, Eq. 6), `:no_sharing` (4 private
blocks, nothing shared), `:smoke` (tiny, for tests).
"""

import ml_collections

VARIANTS = ('cross_entropy', 'no_sharing', 'smoke')


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.experiment = 'alignflow.translation'
  config.seeds = (0,)
  config.distributed = False

  config.data = ml_collections.ConfigDict()
  config.data.a = ml_collections.ConfigDict({
      'name': 'moons', 'field': 'x',
      'options': {'n': 5000, 'seed': 0, 'noise': 0.05, 'rotation_degrees': 0.0}})
  config.data.b = ml_collections.ConfigDict({
      'name': 'moons', 'field': 'x',
      'options': {'n': 5000, 'seed': 0, 'noise': 0.05, 'rotation_degrees': 50.0}})
  config.data.splits = (2000, 500, 500)  # per-domain train (disjoint halves), val, test pairs

  config.model = ml_collections.ConfigDict()
  # The two flows and their shared latent space: num_private Real NVP blocks per domain, then
  # num_shared blocks common to both.
  config.model.alignflow = ml_collections.ConfigDict(
      {'num_private': 2, 'num_shared': 2, 'hidden': (128, 128)})
  config.model.critic = ml_collections.ConfigDict({'hidden': (128, 128)})  # C_A and C_B
  config.model.cyclegan = ml_collections.ConfigDict({'hidden': (128, 128)})  # the baseline
  config.cyclegan_cycle_weight = 10.0  # weight of CycleGAN's cycle-consistency loss
  config.gan_form = 'least_squares'
  config.modes = ('adversarial', 'hybrid', 'mle', 'cyclegan')
  # Log-likelihoods are nats per 2-D point (O(1)), so lam is far larger than for images.
  config.lams = (0.001, 0.01, 0.1)
  config.pool_size = 50
  config.dequantization_width = 0.0

  # One block per optimiser. train.flows: the flows' optimiser, and the loop of every stage
  # (flows and critics alternate in one stage; CycleGAN's stage runs the same loop), whose
  # num_steps the other blocks' schedules span. train.critic: both critics.
  # train.cyclegan: the baseline's generators.
  config.train = ml_collections.ConfigDict()
  config.train.flows = ml_collections.ConfigDict({
      'num_steps': 2000, 'batch_size': 128, 'lr': 1e-3, 'b1': 0.5, 'grad_clip': 10.0,
      'schedule': 'linear_decay_second_half',
      'steps_per_dispatch': 500, 'checkpoint_every': 1000})
  config.train.critic = ml_collections.ConfigDict(
      {'lr': 1e-3, 'b1': 0.5, 'grad_clip': 0.0, 'schedule': 'linear_decay_second_half'})
  config.train.cyclegan = ml_collections.ConfigDict(
      {'lr': 1e-3, 'b1': 0.5, 'grad_clip': 0.0, 'schedule': 'linear_decay_second_half'})

  if variant == 'cross_entropy':
    config.gan_form = 'cross_entropy'
  elif variant == 'no_sharing':
    config.model.alignflow.update(num_private=4, num_shared=0)
  elif variant == 'smoke':
    config.data.a.options.n = config.data.b.options.n = 400
    config.data.splits = (100, 50, 50)
    config.model.alignflow.update(num_private=1, num_shared=1, hidden=(8,))
    config.model.critic.hidden = (8,)
    config.model.cyclegan.hidden = (8,)
    config.modes = ('hybrid',)
    config.lams = (0.1,)
    config.pool_size = 4
    config.train.flows.update(num_steps=4, batch_size=16, steps_per_dispatch=2,
                              checkpoint_every=2)
  elif variant:
    raise ValueError(f'unknown variant {variant!r} of alignflow_moons; known: {VARIANTS}')
  return config
