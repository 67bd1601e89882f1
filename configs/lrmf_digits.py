r"""LRMF of digit embeddings (LRMF Sec. 4 setup 3; Fig. 5b, 11): A -> B in a shared VAE latent.

The paper aligns USPS to MNIST codes of a VAE-GAN's 32-d latent space with Real NVP LRMF and
compares classifiers trained on decoded transformed codes (target accuracy: LRMF .55, EMD .47,
CORAL .48; McNemar p < 1e-3). Here A is scikit-learn's 8x8 digits resized to 16x16 (USPS is not
bundled) and B the 5,000 bundled MNIST digits at 16x16. The autoencoder is a VAE-GAN (Larsen
et al. 2016) of MLPs: an MLP discriminator (`model.vae_discriminator`) on real images,
reconstructions and decoded prior samples, whose non-saturating generator loss (weight
`model.vae.adversarial_weight`) and feature-space reconstruction (its last hidden layer, weight
`model.vae.feature_weight`) are added to the VAE's pixel ELBO; both weights 0 give a plain VAE.
Real NVP: 4 coupling blocks spaced by permutations, MLP 2 x 256 (the paper's 512 in `:paper`).

Run:
  python -m experiments.run --config=configs/lrmf_digits.py --workdir=runs/lrmf_digits
Variants: `:paper` (512-wide Real NVP), `:smoke` (tiny, for tests).
"""

import ml_collections

from configs import lrmf_moons

VARIANTS = ('paper', 'smoke')


def digit_domain(source: str, n: int | None) -> ml_collections.ConfigDict:
  """A labelled ``digit_images`` domain at 16x16 (USPS's resolution) in ``[0, 1]``; ``root``:
  a folder of the paper's digit set (MNIST IDX, USPS LIBSVM, SVHN .mat) read in the same form
  instead (:func:`harness.domains.load_paper_domain`), ``''`` for the bundled stand-in."""
  return ml_collections.ConfigDict({
      'name': 'digit_images', 'field': 'images', 'label_field': 'labels',
      'options': {'source': source, 'size': 16, 'n': n, 'seed': 0}, 'root': ''})


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  if variant not in ('',) + VARIANTS:
    raise ValueError(f'unknown variant {variant!r} of lrmf_digits; known: {VARIANTS}')
  config = lrmf_moons.get_config('smoke' if variant == 'smoke' else '')
  config.restarts = 1  # restarts address the moons' folding (configs/lrmf_moons.py)
  config.experiment = 'lrmf.digits'
  config.data = ml_collections.ConfigDict()
  config.data.a = digit_domain('sklearn_digits', None)   # 1,797 images
  config.data.b = digit_domain('mnist_5000', None)       # 5,000 images
  config.data.splits_a = (1297, 250, 250)            # train, validation, test
  config.data.splits_b = (4000, 500, 500)
  # codes: the posterior mean per image ('mean') or one posterior draw ('sample').
  config.model.vae = ml_collections.ConfigDict({'latent_dim': 32, 'hidden': (512, 256),
                                                'codes': 'mean', 'adversarial_weight': 1.0,
                                                'feature_weight': 1.0})
  # The VAE-GAN's discriminator: leaky-ReLU MLP, Adam with DCGAN's b1 = 0.5 (it steps with
  # the VAE's stage).
  config.model.vae_discriminator = ml_collections.ConfigDict({'hidden': (256, 256)})
  config.train.vae_discriminator = ml_collections.ConfigDict({'lr': 2e-4, 'b1': 0.5})
  config.train.vae = ml_collections.ConfigDict(config.train.private.to_dict())
  config.train.vae.update(num_steps=4000, batch_size=128, lr=1e-3, keep_best=True)
  config.coral_ridge = 1.0  # CORAL's regularised covariances, C + I (Sun et al., 2016)
  # The digit classifier: logistic regression, L2 penalty 1 / c.
  config.model.classifier = ml_collections.ConfigDict({'c': 1.0})
  if variant in ('', 'paper'):
    width = {'': 256, 'paper': 512}[variant]
    for block in (config.model.density, config.model.flow):
      block.update(hidden=(width, width))
    # Flow densities on a few thousand 32-d codes overfit within a few thousand steps (longer,
    # faster joint stages drove the held-out objective up), so both stages are short, and the
    # joint one slow.
    config.train.private.update(num_steps=1500, lr=1e-3)
    config.train.joint.update(num_steps=1500, lr=1e-4)
  else:
    config.data.a.options.n = 120
    config.data.b.options.n = 120
    config.data.splits_a = config.data.splits_b = (60, 30, 30)
    config.model.vae.update(latent_dim=4, hidden=(16,))
    config.model.vae_discriminator.hidden = (8,)
    config.train.vae.update(num_steps=20, batch_size=20, steps_per_dispatch=10, eval_every=10,
                            checkpoint_every=10)
    config.model.density.update(hidden=(8,))
    config.model.flow.update(hidden=(8,))
    config.train.private.update(batch_size=20)
    config.train.joint.update(batch_size=20)
  return config
