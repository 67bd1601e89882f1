r"""Our flows against the papers' original implementations, side by side in one run.

  python -m benchmarks.originals [--rows=alignflow,maf,ffjord,glow16,glow32]
      [--repeats=5] [--quick] [--out=benchmarks/results_originals_cpu.json]

For each row, a PyTorch model written here after the original implementation (its
architecture, its training step, its sampling loop; no code of the originals is used or
copied) and our JAX model of the same size, trained on the same data with the same batch
size, are timed in this one process, alternating ours / theirs over ``--repeats`` paired
repeats after warm-up (and, for JAX, compilation). Each row reports the median and the
min-max of both rates and of the paired ratio ours / theirs.

Rows (the originals read for them):

* ``alignflow``: AlignFlow's Real NVP (ermongroup/alignflow, ``models/real_nvp``) on
  3x32x32 images, batch 16: 3 scales, 3 checkerboard + 3 channel-wise couplings per scale
  and 4 checkerboard couplings on the last, residual s/t networks of 4 blocks with 32
  channels at the first scale (doubled per scale and for the channel-wise couplings);
  theirs: weight-normalised convolutions, batch norm in the residual blocks, skip 1x1
  convolutions, inputs ``relu([x, -x, mask])``, the de-quantise + logit pre-processing,
  Adam(2e-4, betas (0.5, 0.999)) with L2 5e-5 on the weight-norm scales. Ours:
  :func:`nflax.bijectors.realnvp_image` as ``configs/alignflow_mnist.py:paper_scale``
  configures it (ActNorm before each coupling, plain ResNet conditioners), after the
  exact ``[-1, 1] -> logit`` pre-processing of ``experiments/alignflow``, with the
  config's optimiser (clip 10, Adam(2e-4, 0.5, 0.999)). Training steps/s of one flow's
  maximum-likelihood step and samples/s of the inverse.
* ``maf``: the MAF of featurized DRE's targeted MNIST (ermongroup/f-dre, whose MAF is
  kamenbliznashki/normalizing_flows'): 784-D, 5 MADE blocks of one hidden layer of 1024
  ReLU units, batch norm after each block, orders flipped between blocks, Adam(1e-4,
  weight decay 1e-6), batch 100. Training steps/s and the sequential inverse (sampling:
  theirs is ``d`` full MADE passes per block, one per input degree, in Python).
* ``ffjord``: LRMF's FFJORD variant (2 blocks, tanh MLP [16, 16, 16] on ``[z, t]``, exact
  trace, dopri5, rtol = atol = 1e-5, T = 1, batch 256, Adam 1e-3) against the same model
  written with torchdiffeq as rtqichen/ffjord trains it (``odeint_adjoint``, brute-force
  divergence by autograd, same tolerances). Both start from the same (non-zero) weights,
  copied from ours, so both integrate the same ODE; the repeats restart from them.
* ``glow16`` / ``glow32``: Glow (kamenbliznashki/normalizing_flows, as used by f-dre): per
  step ActNorm, LU 1x1 convolution, affine coupling whose network is 3x3 conv + ActNorm +
  ReLU, 1x1 conv + ActNorm + ReLU, zero 3x3 conv, ``sigmoid(s + 2)`` scales, learned
  Gaussian priors of the factored-out halves; ours :func:`nflax.bijectors.glow` (ConvNet
  couplings of a 3x3, a 1x1 and a zero 3x3 convolution as in Glow Sec. 3.3, fixed prior) at the same levels, steps and width:
  16x16x1, 2 levels x 4 steps x 64 filters, batch 64 (``benchmarks/flows.py``'s row), and
  32x32x3, 3 levels x 4 steps x 64 filters, batch 16.

The float32 matmul rate of this machine is measured in the same run (JAX, 2048^2 chain,
as ``benchmarks/flows.py``; PyTorch's alongside); for the large rows the share of that
peak is ours' FLOPs per step (XLA's cost analysis) times steps/s, and theirs' from
``torch.utils.flop_counter`` of one step. PyTorch runs with ``torch.set_num_threads`` =
the core count, JAX on its defaults. On a GPU both run there unchanged (torch on cuda).
PyTorch and torchdiffeq come from the ``benchmarks`` extra (``pip install -e .[benchmarks]``).
"""

from __future__ import annotations

import json
import os
import platform
import time

import jax
from absl import app, flags

from benchmarks.originals import alignflow, ffjord, glow, maf, timing

ROWS = ('alignflow', 'maf', 'ffjord', 'glow16', 'glow32')
_ROWS = flags.DEFINE_list('rows', list(ROWS), f'Rows to run, of {ROWS}.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Paired timed repeats per measurement.')
_QUICK = flags.DEFINE_bool('quick', False, 'Smaller step counts and 2 repeats (smoke check).')
_OUT = flags.DEFINE_string('out', None, 'Optional JSON file for the results.')
_MAF_SAMPLES = flags.DEFINE_integer('maf_samples', 16,
                                    'Samples per timed MAF inverse (theirs: 3920 MADE passes).')
_PROPOSALS = flags.DEFINE_integer('proposals', 5000,
                                  'Ours only: one batch of SIR proposals from the MAF, timed.')


def _fmt(s: dict, digits: int = 3) -> str:
  return f"{s['median']:.{digits}g} ({s['min']:.{digits}g}-{s['max']:.{digits}g})"


def table(results: dict) -> str:
  peak = results['matmul_gflops_jax']
  lines = ['| row | measurement | ours | theirs (PyTorch) | ratio ours/theirs (median, min-max) '
           '| % of matmul peak, ours / theirs |', '|---|---|---|---|---|---|']
  for r in results['rows'].values():
    for kind, unit in (('train', 'steps/s'), ('sample', 'samples/s')):
      if kind not in r:
        continue
      m = r[kind]
      share = ''
      if kind == 'train' and 'flops_ours' in r:
        ours = r['flops_ours'] * m['ours']['median'] / 1e9 / peak
        theirs = r['flops_theirs'] * m['theirs']['median'] / 1e9 / peak
        share = (f"{100 * ours:.1f}% ({r['flops_ours'] / 1e9:.2f} GFLOP/step) / "
                 f"{100 * theirs:.1f}% ({r['flops_theirs'] / 1e9:.2f} GFLOP/step)")
      label = 'training' if kind == 'train' else 'sampling'
      if kind == 'sample' and 'sample_batch' in r:
        label += f" ({r['sample_batch']} at once)"
      lines.append(f"| {r['name']} | {label} ({unit}) | {_fmt(m['ours'])} | "
                   f"{_fmt(m['theirs'])} | {_fmt(m['ratio'])} | {share} |")
  return '\n'.join(lines)


def main(argv):
  del argv
  torch = timing.import_torch()
  quick = _QUICK.value
  repeats = 2 if quick else _REPEATS.value
  results = {
      'command': 'python -m benchmarks.originals ' + ' '.join(
          f'--{k}={v}' for k, v in (('rows', ','.join(_ROWS.value)), ('repeats', repeats))),
      'date': time.strftime('%Y-%m-%d %H:%M'),
      'machine': f'{platform.machine()}, {os.cpu_count()} cores, {platform.processor()}',
      'jax_devices': [str(d) for d in jax.devices()], 'jax': jax.__version__,
      'torch_device': str(timing.device), 'torch': torch.__version__,
      'torch_threads': torch.get_num_threads(), 'repeats': repeats, 'quick': quick, 'rows': {}}
  print(f"JAX devices: {results['jax_devices']}   torch device: {timing.device} "
        f"({torch.get_num_threads()} threads)   {results['machine']}", flush=True)
  size = 512 if quick else 2048
  results['matmul_gflops_jax'] = timing.jax_matmul_gflops(size, 5)
  results['matmul_gflops_torch'] = timing.torch_matmul_gflops(size, 5)
  print(f"float32 matmul {size}^2: JAX {results['matmul_gflops_jax']:.1f} GFLOP/s, "
        f"PyTorch {results['matmul_gflops_torch']:.1f} GFLOP/s", flush=True)
  runners = {'alignflow': alignflow.row_alignflow,
             'maf': lambda r, q: maf.row_maf(r, q, _MAF_SAMPLES.value, _PROPOSALS.value),
             'ffjord': ffjord.row_ffjord,
             'glow16': lambda r, q: glow.row_glow(r, q, big=False),
             'glow32': lambda r, q: glow.row_glow(r, q, big=True)}
  for name in _ROWS.value:
    start = time.perf_counter()
    results['rows'][name] = runners[name](repeats, quick)
    results['rows'][name]['wall_seconds'] = time.perf_counter() - start
    print(json.dumps({name: {k: (v['ratio']['median'] if isinstance(v, dict) and 'ratio' in v
                                  else v) for k, v in results['rows'][name].items()}},
                     default=str), flush=True)
    if _OUT.value:
      with open(_OUT.value, 'w') as f:
        json.dump(results, f, indent=2)
  print()
  print(table(results))
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      json.dump(results, f, indent=2)


if __name__ == '__main__':
  app.run(main)
