"""DoA evaluation: MUSIC, the stochastic CRB and the registered metric."""
from .crb import crb_mse_deg2, matched_errors, stochastic_crb
from .doa_metric import RISDoAMetric
from .music import MusicEstimator

__all__ = [
    'MusicEstimator', 'RISDoAMetric', 'crb_mse_deg2', 'matched_errors',
    'stochastic_crb'
]
