"""Every claim of the three papers' experiments and the rows of the reproduction report that
read them, one module per paper."""

from experiments.claims import alignflow, fdre, lrmf
from experiments.claims.schema import (MACHINERY, REASONS, Claim, Row, Run, load_config, not_run,
                                       reason_of, runs_of, side_by_side)

__all__ = ['CLAIMS', 'MACHINERY', 'REASONS', 'ROWS', 'Claim', 'Row', 'Run', 'load_config',
           'not_run', 'reason_of', 'runs_of', 'side_by_side']

CLAIMS = lrmf.LRMF_CLAIMS + fdre.FDRE_CLAIMS + alignflow.ALIGNFLOW_CLAIMS
"""Every claim of the papers' experiment sections (and their appendices' tables), in report
order."""

ROWS = lrmf.LRMF_ROWS + fdre.FDRE_ROWS + alignflow.ALIGNFLOW_ROWS
"""Every reported number, in report order."""
