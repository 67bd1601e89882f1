"""The ``ffjord`` row: FFJORD 2-D (LRMF's variant; torchdiffeq as rtqichen/ffjord uses it).

The PyTorch version written here and ``row_ffjord``, which times it against ours with
:mod:`benchmarks.originals.timing`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn import datasets as sk_datasets

from benchmarks.originals import timing
from nflax import bijectors


def _ffjord_torch(jax_params: list[dict], hidden, dim: int, rtol: float, atol: float):
  torch = timing.import_torch()
  import torchdiffeq  # pylint: disable=import-outside-toplevel
  nn = torch.nn

  class ODEFunc(nn.Module):
    def __init__(self, params):
      super().__init__()
      widths = [dim + 1, *hidden, dim]
      self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])])
      with torch.no_grad():
        for index, layer in enumerate(self.layers):
          dense = params[f'Dense_{index}']
          layer.weight.copy_(torch.as_tensor(np.array(dense['kernel']).T))
          layer.bias.copy_(torch.as_tensor(np.array(dense['bias'])))
      self.nfe = 0

    def net(self, t, z):
      h = torch.cat([z, t.expand(z.shape[0], 1).to(z)], 1)
      for index, layer in enumerate(self.layers):
        h = layer(h)
        if index < len(self.layers) - 1:
          h = torch.tanh(h)
      return h

    def forward(self, t, states):  # FFJORD's ODEfunc with the brute-force divergence
      self.nfe += 1
      z = states[0]
      with torch.set_grad_enabled(True):
        z.requires_grad_(True)
        dz = self.net(t, z)
        divergence = 0.0
        for i in range(dim):
          divergence += torch.autograd.grad(dz[:, i].sum(), z, create_graph=True)[0][:, i]
      return dz, -divergence.view(-1, 1)

  class CNF(nn.Module):
    def __init__(self, params):
      super().__init__()
      self.func = ODEFunc(params)

    def forward(self, z, logpz, reverse=False):
      times = torch.tensor([1.0, 0.0] if reverse else [0.0, 1.0]).to(z)
      z_t, logpz_t = torchdiffeq.odeint_adjoint(self.func, (z, logpz), times, rtol=rtol,
                                                atol=atol, method='dopri5')
      return z_t[-1], logpz_t[-1]

  class Stack(nn.Module):
    def __init__(self):
      super().__init__()
      self.blocks = nn.ModuleList([CNF(p) for p in jax_params])

    def log_prob(self, x):
      delta = torch.zeros(x.shape[0], 1, device=x.device)
      for block in self.blocks:
        x, delta = block(x, delta)
      return timing.normal_log_prob_sum(x) - delta.view(-1)

    def sample(self, n):
      z = torch.randn(n, dim, device=timing.device)
      delta = torch.zeros(n, 1, device=timing.device)
      for block in reversed(self.blocks):
        z, delta = block(z, delta, reverse=True)
      return z

  return Stack().to(timing.device)


def row_ffjord(repeats: int, quick: bool) -> dict:
  torch = timing.import_torch()
  batch, hidden, rtol, atol = 256, (16, 16, 16), 1e-5, 1e-5
  steps = 2 if quick else 5
  data, _ = sk_datasets.make_moons(n_samples=2000, noise=0.05, random_state=0)
  data = ((data - data.mean(0)) / data.std(0)).astype(np.float32)

  def nonzero(variables):  # zero-initialised output layers would give f = 0 (no ODE to solve)
    leaves, tree = jax.tree.flatten(variables)
    keys = jax.random.split(jax.random.PRNGKey(7), len(leaves))
    leaves = [jax.random.normal(k, x.shape, x.dtype) * (0.6 / math.sqrt(x.shape[0])
                                                          if x.ndim == 2 else 0.1)
              for k, x in zip(keys, leaves)]
    return jax.tree.unflatten(tree, leaves)

  ours = timing.Ours(bijectors.ffjord(2, hidden, 'exact', rtol=rtol, atol=atol), (2,), data,
                     batch, optax.adam(1e-3), steps, variables_fn=nonzero)
  params = ours.variables['params']['flow']
  jax_params = [params[f'layers_{i}']['dynamics'] for i in range(2)]
  model = _ffjord_torch(jax_params, hidden, 2, rtol, atol)
  opt = torch.optim.Adam(model.parameters(), lr=1e-3)
  theirs = timing.Theirs(model, lambda x: -model.log_prob(x).mean(), opt, data, batch, steps,
                         reset_state=True)
  nfe_before = sum(b.func.nfe for b in model.blocks)
  theirs.train()
  nfe = (sum(b.func.nfe for b in model.blocks) - nfe_before) / steps
  # our log-likelihood at the start equals theirs (same ODE, same tolerances)
  x0 = data[:batch]
  ours_ll = float(jnp.mean(ours.density.apply(ours.variables, jnp.asarray(x0),
                                              method=type(ours.density).log_prob)))
  model.load_state_dict(theirs.initial)
  theirs_ll = float(model.log_prob(torch.as_tensor(x0, device=timing.device)).mean().detach())
  result = {'name': f'FFJORD 2-D, 2 blocks, tanh [16,16,16], exact trace, dopri5 rtol=atol=1e-5, '
                    f'batch {batch}',
            'train': timing.paired(ours.train, theirs.train, steps, steps, repeats),
            'theirs_nfe_per_step': nfe, 'log_prob_ours': ours_ll, 'log_prob_theirs': theirs_ll}

  def sample_theirs():
    model.eval()
    with torch.no_grad():
      return model.sample(batch).sum().item()

  model.load_state_dict(theirs.initial)
  result['sample'] = timing.paired(ours.sampler(batch), sample_theirs, batch, batch, repeats)
  return result
