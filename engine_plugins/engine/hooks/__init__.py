from .close_mosaic_hook import CloseMosaicHook
from .epoch_seeded_data_hook import EpochSeededDataHook
from .fp32_loss_region_hook import FP32LossRegionHook, wrap_in_fp32_region
from .safe_checkpoint_hook import SafeCheckpointHook
from .sanity_hook import SanityHook

__all__ = [
    'CloseMosaicHook', 'EpochSeededDataHook', 'FP32LossRegionHook',
    'SafeCheckpointHook', 'SanityHook', 'wrap_in_fp32_region'
]
