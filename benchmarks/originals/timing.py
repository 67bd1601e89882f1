"""The shared timing machinery of ``python -m benchmarks.originals``: ours and theirs, paired.

:func:`paired` times our JAX side and their PyTorch side alternately over paired repeats;
:class:`Ours` wraps one JAX flow density (the engine's training step, the density's
sampling), :class:`Theirs` a PyTorch model's training loop; :func:`import_torch` imports
torch and sets :data:`device`; :func:`jax_matmul_gflops` and :func:`torch_matmul_gflops`
measure the machine's float32 matmul rate. :func:`normal_log_prob_sum` and
:func:`torch_squeeze` are shared by the PyTorch versions of the rows.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from nflax import densities, engine, fitting

_torch = None
device = None  # torch's device, set by import_torch(): read it as timing.device


def import_torch():
  """Imports torch (the benchmarks extra) and picks its device: cuda if available."""
  global _torch, device
  if _torch is None:
    import torch  # pylint: disable=import-outside-toplevel
    torch.set_num_threads(os.cpu_count() or 1)
    _torch = torch
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
  return _torch


def _sync():
  if device is not None and device.type == 'cuda':
    _torch.cuda.synchronize()


def timed(fn: Callable[[], object]) -> float:
  start = time.perf_counter()
  out = fn()
  jax.block_until_ready(out)
  _sync()
  return time.perf_counter() - start


def _stats(values: list[float]) -> dict:
  return {'median': statistics.median(values), 'min': min(values), 'max': max(values),
          'values': values}


def paired(ours: Callable[[], object], theirs: Callable[[], object], units_ours: float,
           units_theirs: float, repeats: int) -> dict:
  """Rates (units/s) of ``ours`` and ``theirs``, alternating, after one warm-up call each."""
  timed(ours)
  timed(theirs)
  rate_ours, rate_theirs, ratio = [], [], []
  for _ in range(repeats):
    rate_ours.append(units_ours / timed(ours))
    rate_theirs.append(units_theirs / timed(theirs))
    ratio.append(rate_ours[-1] / rate_theirs[-1])
  return {'ours': _stats(rate_ours), 'theirs': _stats(rate_theirs), 'ratio': _stats(ratio)}


# --- our side: the engine's training step and the density's sampling -------------------------

class Ours:
  """One JAX flow density: ``train(n)`` runs n engine steps from the same initial state."""

  def __init__(self, flow, event_shape, data: np.ndarray, batch_size: int, optimizer,
               num_steps: int, variables_fn=None):
    self.density = densities.FlowDensity(flow, densities.StandardNormal(tuple(event_shape)))
    data = jnp.asarray(data)
    variables = self.density.init(jax.random.PRNGKey(1), data[:batch_size])
    if variables_fn is not None:
      variables = variables_fn(variables)
    self.variables = variables
    run_ = fitting.init_fit_run(engine.add_replica_axis(variables), optimizer)
    step_fn = fitting.GradientStep(fitting.nll_objective(self.density), optimizer)
    data_r, keys = data[None], jax.random.PRNGKey(2)[None]
    kwargs = dict(step_fn=step_fn, batch_size=batch_size, num_steps=num_steps, guard=False)
    self.num_steps = num_steps
    self.train = lambda: engine.dispatch(run_, data_r, keys, **kwargs)
    compiled = engine.dispatch.lower(run_, data_r, keys, **{**kwargs, 'num_steps': 1}).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    self.flops_per_step = float(cost.get('flops', float('nan')))
    self._samplers = {}

  def sampler(self, num_samples: int) -> Callable[[], object]:
    if num_samples not in self._samplers:
      density, variables = self.density, self.variables
      self._samplers[num_samples] = jax.jit(lambda key: density.apply(
          variables, key, num_samples, method=type(density).sample))
    fn = self._samplers[num_samples]
    return lambda: fn(jax.random.PRNGKey(3))


# --- their side: a generic PyTorch training loop ------------------------------------------------

class Theirs:
  """A PyTorch model's training loop: ``train()`` runs n steps of ``loss_fn(batch)``."""

  def __init__(self, model, loss_fn, optimizer, data: np.ndarray, batch_size: int,
               num_steps: int, reset_state: bool = False):
    torch = import_torch()
    self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
    self.data = torch.as_tensor(np.asarray(data), dtype=torch.float32, device=device)
    self.batch_size, self.num_steps = batch_size, num_steps
    self.generator = torch.Generator(device='cpu').manual_seed(0)
    self.initial = ({k: v.clone() for k, v in model.state_dict().items()}
                    if reset_state else None)
    self.optimizer_initial = optimizer.state_dict() if reset_state else None

  def step(self):
    torch = _torch
    idx = torch.randint(0, self.data.shape[0], (self.batch_size,), generator=self.generator)
    batch = self.data[idx.to(device)]
    self.optimizer.zero_grad()
    loss = self.loss_fn(batch)
    loss.backward()
    self.optimizer.step()
    return loss

  def train(self):
    self.model.train()
    if self.initial is not None:
      self.model.load_state_dict(self.initial)
      self.optimizer.load_state_dict(self.optimizer_initial)
    loss = None
    for _ in range(self.num_steps):
      loss = self.step()
    return float(loss.detach())

  def flops_per_step(self) -> float:
    from torch.utils.flop_counter import FlopCounterMode  # pylint: disable=import-outside-toplevel
    state = {k: v.clone() for k, v in self.model.state_dict().items()}
    optimizer_state = self.optimizer.state_dict()
    with FlopCounterMode(display=False) as counter:
      self.step()
    self.model.load_state_dict(state)
    self.optimizer.load_state_dict(optimizer_state)
    return float(counter.get_total_flops())


# --- shared by the PyTorch versions -------------------------------------------------------------

def normal_log_prob_sum(z):
  return (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).flatten(1).sum(-1)


def torch_squeeze(x, reverse=False):
  b, c, h, w = x.shape
  if not reverse:
    x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * 4, h // 2, w // 2)
  x = x.view(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
  return x.reshape(b, c // 4, h * 2, w * 2)


# --- the machine's float32 matmul rate ----------------------------------------------------------

def jax_matmul_gflops(size: int, repeats: int) -> float:
  """float32 GFLOP/s of a jitted ``size x size`` matmul chain (as ``benchmarks/flows.py``)."""
  a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
  b = jax.random.normal(jax.random.PRNGKey(1), (size, size), jnp.float32)
  step = jax.jit(lambda a, b: jax.lax.fori_loop(0, 4, lambda _, x: (x @ b) * 1e-3, a))
  timed(lambda: step(a, b))
  return 2 * size**3 * 4 / statistics.median(timed(lambda: step(a, b))
                                              for _ in range(repeats)) / 1e9


def torch_matmul_gflops(size: int, repeats: int) -> float:
  torch = import_torch()
  a = torch.randn(size, size, device=device)
  b = torch.randn(size, size, device=device)

  def chain():
    x = a
    for _ in range(4):
      x = (x @ b) * 1e-3
    return x

  chain()
  _sync()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    chain()
    _sync()
    times.append(time.perf_counter() - start)
  return 2 * size**3 * 4 / statistics.median(times) / 1e9
