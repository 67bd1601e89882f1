r"""AlignFlow paired translation on MNIST vs a pixel-wise transformed MNIST (Table 1, 3 protocol).

Domain A: the 5,000 bundled MNIST digits resized to 16x16 in [-1, 1]; domain B: the same
digits with inverted and squared intensities (``b = 2 (1 - (a + 1) / 2)^2 - 1``), so every
test digit has its true pair. Training uses disjoint halves (unpaired); the test MSE to the
true pair is Table 1's metric. The paper's data (Facades, Maps, CityScapes) are not on this
machine. Reduced App. B.1 flows (2-scale RealNVP, ResNet couplings, ActNorm; one shared
coupling on the latent image), logit pre-processing (a bijection, so cycles are exact),
PatchGAN critics, least-squares GAN terms, a pool of 50, Adam(2e-4, 0.5, 0.999) with linear
decay over the second half, gradient clipping 10 for the flows, batch 16. Modes:
adversarial-only, hybrid (lam in {1e-3, 1e-2}, chosen on validation MSE; lam scales with the
nats of 256 pixels, the paper's 1e-5 on 256x256x3 images is ~8e-3 here) and MLE-only
AlignFlow, and a CycleGAN baseline (ResNet generators, cycle weight 10) trained alike: the
same critics, steps, batch and optimiser, and generators sized to as many parameters as the
two AlignFlow flows (the ratio is in results.json); the paired validation MSE of every model
and seed is logged every `eval_every` steps (plots/validation_mse.png). Paired samples and
latent interpolations decoded into both domains (Fig. 2, 4).

Numbers over seeds: REPRODUCTION.md (`python -m experiments.reproduce --runs=alignflow_mnist`).
What the controlled comparison shows. With the same
parameters, steps, batch, critics and optimiser at 8x8 and a few hundred steps, neither model
finds this pairing: AlignFlow (every mode) and CycleGAN end above the paired MSE of a wrong
pairing (results.json: `mse_wrong_pair`), hybrid and CycleGAN do not differ over seeds, and
CycleGAN is unstable at either size (seeds stall at a constant image of the other domain or
worse), its original half-size generator worse than the matched one, so capacity is not what
favours CycleGAN.
AlignFlow's validation curves flatten within a few hundred steps (hybrid at lam 1e-2 first,
MLE-only slowly), so under-training does not explain its error; a larger lam helps (ADV-only
worst, MLE-only and lam 1e-2 best), so the critics' terms are the unstable part. The gap of
the 16x16 runs is the task: the map inverts intensities, an order-reversing pixel-wise map
that a convolution represents with one negative weight, while every coupling of a flow is
increasing in the pixels it transforms and starts near the identity, so AlignFlow's
data -> latent -> data map leans to order-preserving translations and nothing in the MLE
terms pulls it to the reversal. On an order-preserving map (`transform=gamma`, the report's
run alignflow_mnist_gamma) hybrid AlignFlow finds the pairing within a hundred steps. ADV-only
and small-lam hybrids push translated logits far beyond the data's (+-2.94 at logit_alpha 0.05),
where the post-processing sigmoid rounds to the interval's end even in float64 and data-space
round trips are lost; the flows' own round trip between logit images stays exact
(results.json: max_cycle_error_flow_float64_*, saturated_translation_fraction_*).

Run:
  python -m experiments.run --config=configs/alignflow_mnist.py --workdir=runs/alignflow_mnist
On the paper's data (Table 1 on Maps at the paper's 64x64; README "Running on the papers' data"):
  python -m experiments.run --config=configs/alignflow_mnist.py:paper_scale \
    --config.data.root=/datasets/maps --config.data.options.size=64 \
    --config.data.splits='(996,100,1098)' --workdir=runs/alignflow_maps
With a root, the training images of both domains are the training split's (sampled
independently, as in CycleGAN's unaligned protocol), the validation pairs are held out of it
and the test pairs come from the data set's test split (test/, else val/).
Variants: `:lam_sweep` (hybrid lam in 1e-5 ... 1e-2 as in Table 3), `:rotate` (domain B is
each digit turned a quarter: a pairing that is a permutation of the pixels rather than a
pixel-wise map, which neither a small convolutional generator nor a flow represents
directly), `:paper_scale` (28x28 resized to 32x32, App. B.1 widths, 3 scales, 200 epochs'
worth of steps; GPU-sized), `:smoke` (tiny, for tests).
"""

import ml_collections

VARIANTS = ('lam_sweep', 'rotate', 'paper_scale', 'smoke')


def get_config(variant: str = '') -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.experiment = 'alignflow.translation'
  config.seeds = (0,)
  config.distributed = False

  # root: a folder of pix2pix side-by-side pairs (Maps, Facades, CityScapes; README "Running on
  # the papers' data"), read at options.size in RGB instead of the stand-in; '' for the stand-in.
  config.data = ml_collections.ConfigDict({
      'name': 'mnist_transformed_pair',
      'options': {'n': 2000, 'seed': 0, 'size': 16, 'transform': 'invert_gamma'},
      'splits': (800, 100, 200),  # per-domain train (disjoint halves), val, test pairs
      'root': ''})

  config.model = ml_collections.ConfigDict()
  # The two flows and their shared latent space: a multi-scale RealNVP per domain, then
  # num_shared couplings common to both, behind a fixed logit pre-processing.
  config.model.alignflow = ml_collections.ConfigDict({
      'num_levels': 2, 'hidden_channels': 8, 'num_blocks': 1, 'num_checkerboard': 1,
      'num_channelwise': 1, 'num_final': 2, 'num_shared': 1, 'logit_alpha': 0.05})
  config.model.critic = ml_collections.ConfigDict({'base_channels': 16, 'num_layers': 2})
  # The baseline's generators: as many parameters as the two flows (results.json:
  # generator_param_ratio/cyclegan_vs_<stage>).
  config.model.cyclegan = ml_collections.ConfigDict({'hidden_channels': 16, 'num_blocks': 4})
  config.cyclegan_cycle_weight = 10.0  # weight of CycleGAN's cycle-consistency loss
  config.gan_form = 'least_squares'
  config.modes = ('adversarial', 'hybrid', 'mle', 'cyclegan')
  config.lams = (1e-3, 1e-2)  # chosen on validation MSE
  config.pool_size = 50
  config.dequantization_width = 2.0 / 256  # one 8-bit level in [-1, 1]

  # One block per optimiser. train.flows: the flows' optimiser, and the loop of every stage
  # (flows and critics alternate in one stage; CycleGAN's stage runs the same loop), whose
  # num_steps the other blocks' schedules span. train.critic: both critics.
  # train.cyclegan: the baseline's generators.
  config.train = ml_collections.ConfigDict()
  config.train.flows = ml_collections.ConfigDict({
      'num_steps': 2000, 'batch_size': 16, 'lr': 2e-4, 'b1': 0.5, 'grad_clip': 10.0,
      'schedule': 'linear_decay_second_half',
      'steps_per_dispatch': 100, 'eval_every': 100, 'checkpoint_every': 500})
  config.train.critic = ml_collections.ConfigDict(
      {'lr': 2e-4, 'b1': 0.5, 'grad_clip': 0.0, 'schedule': 'linear_decay_second_half'})
  config.train.cyclegan = ml_collections.ConfigDict(
      {'lr': 2e-4, 'b1': 0.5, 'grad_clip': 0.0, 'schedule': 'linear_decay_second_half'})

  if variant == 'lam_sweep':
    config.modes = ('hybrid',)
    config.lams = (1e-5, 1e-4, 1e-3, 1e-2)
  elif variant == 'rotate':
    config.data.options.transform = 'rotate90'
  elif variant == 'paper_scale':
    config.data.options.update(n=None, size=32)
    config.data.splits = (2000, 500, 500)
    config.model.alignflow.update(num_levels=3, hidden_channels=32, num_blocks=4,
                                  num_checkerboard=3, num_channelwise=3, num_final=4)
    config.model.critic.update(base_channels=64, num_layers=3)
    config.model.cyclegan.update(hidden_channels=64, num_blocks=6)
    config.lams = (1e-5, 1e-4, 1e-3)
    config.train.flows.update(num_steps=25_000, steps_per_dispatch=500, checkpoint_every=2500)
  elif variant == 'smoke':
    config.data.options.update(n=64, size=8)
    config.data.splits = (16, 8, 8)
    config.model.alignflow.update(num_levels=1, hidden_channels=4, num_final=1, num_shared=0)
    config.model.critic.update(base_channels=4, num_layers=1)
    config.model.cyclegan.update(hidden_channels=4, num_blocks=1)
    config.modes = ('mle', 'cyclegan')
    config.pool_size = 4
    config.train.flows.update(num_steps=2, batch_size=4, steps_per_dispatch=1, eval_every=1,
                              checkpoint_every=2)
  elif variant:
    raise ValueError(f'unknown variant {variant!r} of alignflow_mnist; known: {VARIANTS}')
  return config
