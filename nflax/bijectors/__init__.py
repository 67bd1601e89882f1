"""Bijectors: Flax modules with ``forward_and_log_det`` / ``inverse_and_log_det``."""

from nflax.bijectors.base import Bijector, Chain, Inverse, as_distrax
