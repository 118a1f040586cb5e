"""DoA evaluation: MUSIC, the DML search, the stochastic CRB and the
registered metric."""
from .crb import (crb_mse_deg2, matched_errors, matched_source_errors,
                  stochastic_crb)
from .dml_search import DMLSearch
from .doa_metric import COLUMN_LABELS, RISDoAMetric
from .fit_selection import (best_subset, fit_excess, prefer_candidate,
                            refine_fit, residual_power,
                            residual_power_gradient, select_candidate)
from .music import MusicEstimator
from .source_posterior import SingleSourcePosterior, single_source_parameters
from .spatial_smoothing import fb_spatial_smoothing, subarray_shape

__all__ = [
    'COLUMN_LABELS', 'DMLSearch', 'MusicEstimator', 'RISDoAMetric',
    'SingleSourcePosterior', 'best_subset', 'crb_mse_deg2',
    'fb_spatial_smoothing', 'fit_excess', 'matched_errors',
    'matched_source_errors', 'prefer_candidate', 'refine_fit',
    'residual_power', 'residual_power_gradient', 'select_candidate',
    'single_source_parameters', 'stochastic_crb', 'subarray_shape'
]
