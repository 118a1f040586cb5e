from .close_mosaic_hook import CloseMosaicHook
from .fp32_loss_region_hook import FP32LossRegionHook, wrap_in_fp32_region
from .grad_sanity_hook import GradSanityHook
from .preflight_hook import PreflightHook

__all__ = [
    'CloseMosaicHook', 'FP32LossRegionHook', 'GradSanityHook', 'PreflightHook',
    'wrap_in_fp32_region'
]
