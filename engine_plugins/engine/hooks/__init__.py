from .close_mosaic_hook import CloseMosaicHook
from .fp32_loss_region_hook import FP32LossRegionHook, wrap_in_fp32_region
from .sanity_hook import SanityHook

__all__ = [
    'CloseMosaicHook', 'FP32LossRegionHook', 'SanityHook',
    'wrap_in_fp32_region'
]
