from .close_mosaic_hook import CloseMosaicHook
from .epoch_seeded_data_hook import EpochSeededDataHook
from .fp32_loss_region_hook import FP32LossRegionHook, wrap_in_fp32_region
from .reinit_class_head_hook import ReinitClassHeadHook
from .safe_checkpoint_hook import SafeCheckpointHook
from .sanity_hook import SanityHook

__all__ = [
    'CloseMosaicHook', 'EpochSeededDataHook', 'FP32LossRegionHook',
    'ReinitClassHeadHook', 'SafeCheckpointHook', 'SanityHook',
    'wrap_in_fp32_region'
]
