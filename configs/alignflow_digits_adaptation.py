r"""AlignFlow unsupervised domain adaptation, MNIST <-> scikit-learn digits (Table 2 protocol).

Domain A: the 5,000 bundled MNIST digits; domain B: scikit-learn's 1,797 8x8 digits
upsampled, standing in for USPS (not bundled); both 16x16 (USPS's resolution), in
[-1, 1]. Hybrid AlignFlow (the flows, critics and optimiser of configs/alignflow_mnist.py)
is trained on the unlabelled training images of both domains; the labelled source
training images are translated into the target domain and a logistic-regression
classifier trained on them is scored on the target test split, both directions from
one model. The step count (and lam, in `:lam_sweep`) is picked on the labelled target
validation split. References: source only and target only (the ceiling); McNemar's
exact test.

Run:
  python -m experiments.run --config=configs/alignflow_digits_adaptation.py \
    --workdir=runs/alignflow_digits_adaptation
Variants: `:lam_sweep` (lam in 1e-4, 1e-3, 1e-2), `:paper` (32x32 as in CyCADA, App. B.1 flow
widths, 25k steps; GPU-sized), `:svhn_mnist` (Table 2's SVHN -> MNIST: `:paper`'s model and
steps with A = SVHN and B = MNIST, both RGB 32x32, MNIST's grey level repeated in the three
channels; on stand-ins unless the roots are given: scikit-learn's 8x8 digits for SVHN, the
bundled MNIST digits for MNIST, upsampled and repeated to RGB alike, so the stand-ins test the
pipeline, not SVHN's colour and clutter), `:smoke` (tiny, for tests).

Data: each domain reads the data set of its `root` instead of its stand-in (MNIST's IDX, USPS's
LIBSVM or SVHN's .mat files; README "Running on the papers' data") at its `options.size` (and
`options.channels`, 3 in `:svhn_mnist`): MNIST <-> USPS is `--config.data.a.root=/datasets/mnist
--config.data.b.root=/datasets/usps`, SVHN -> MNIST `:svhn_mnist
--config.data.a.root=/datasets/svhn --config.data.b.root=/datasets/mnist`.

Numbers over seeds: REPRODUCTION.md. Known differences from the paper's setting: the
upsampled 8x8 digits fill the frame while MNIST digits sit in a 20x20 box, a linear classifier
on pixels transfers badly, and the flows are small and briefly trained.
"""

import ml_collections

from configs import alignflow_mnist, lrmf_digits

VARIANTS = ('lam_sweep', 'paper', 'svhn_mnist', 'smoke')


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  if variant not in ('',) + VARIANTS:
    raise ValueError(f'unknown variant {variant!r} of alignflow_digits_adaptation; '
                     f'known: {VARIANTS}')
  base_variant = {'paper': 'paper_scale', 'svhn_mnist': 'paper_scale',
                  'smoke': 'smoke'}.get(variant, '')
  config = alignflow_mnist.get_config(base_variant)  # its flows, critics and optimisers
  config.experiment = 'alignflow.adaptation'
  config.data = ml_collections.ConfigDict({
      'a': lrmf_digits.digit_domain('mnist_5000', None),      # 5,000 images
      'b': lrmf_digits.digit_domain('sklearn_digits', None),  # 1,797 images
      'splits_a': (2000, 500, 500),                            # train, validation, test
      'splits_b': (1297, 250, 250)})
  config.modes = ('hybrid',)
  config.lams = (1e-3,)
  del config.model['cyclegan'], config.train['cyclegan'], config['cyclegan_cycle_weight']
  # The target classifier: logistic regression on pixels, L2 penalty 1 / c (fitted by L-BFGS,
  # no optimiser block).
  config.model.classifier = ml_collections.ConfigDict({'c': 1.0})
  # Candidates every select_every steps; the step count is picked on target validation.
  config.train.flows.update(num_steps=1200, select_every=300, steps_per_dispatch=150,
                            checkpoint_every=300)
  if variant == 'lam_sweep':
    config.lams = (1e-4, 1e-3, 1e-2)
  elif variant in ('paper', 'svhn_mnist'):
    if variant == 'svhn_mnist':
      # A: SVHN, scikit-learn's digits standing in; B: MNIST; both RGB.
      config.data.a = lrmf_digits.digit_domain('sklearn_digits', None)
      config.data.b = lrmf_digits.digit_domain('mnist_5000', None)
      config.data.splits_a, config.data.splits_b = (1297, 250, 250), (2000, 500, 500)
      for domain in (config.data.a, config.data.b):
        domain.options.channels = 3
    for domain in (config.data.a, config.data.b):
      domain.options.size = 32
    config.lams = (1e-5, 1e-4, 1e-3)
    config.train.flows.update(num_steps=25_000, select_every=5000, steps_per_dispatch=500,
                              checkpoint_every=5000)
  elif variant == 'smoke':
    for domain in (config.data.a, config.data.b):
      domain.options.update(size=8, n=60)
    config.data.splits_a = config.data.splits_b = (24, 12, 12)
    config.modes = ('mle',)
    config.train.flows.update(num_steps=2, select_every=1, steps_per_dispatch=1,
                              checkpoint_every=1)
  return config
