"""Every claim of the three papers the reproduction report reads, one module per paper."""

from experiments.claims import alignflow, fdre, lrmf
from experiments.claims.schema import Row, Run, load_config, runs_of, side_by_side

__all__ = ['ROWS', 'Row', 'Run', 'load_config', 'runs_of', 'side_by_side']

ROWS = lrmf.LRMF_ROWS + fdre.FDRE_ROWS + alignflow.ALIGNFLOW_ROWS
"""Every reported number, in report order."""
