from .audio import AudioChatDataset, audio_lm_collate
from .checked_coco import CheckedCocoDataset
from .coco_checks import DataCheckError
from .demo_shapes import DemoShapesDataset, write_demo_shapes
from .first_samples_dataset import FirstSamplesDataset
from .ris import RISDoADataset

__all__ = [
    'AudioChatDataset', 'audio_lm_collate', 'CheckedCocoDataset',
    'DataCheckError', 'DemoShapesDataset',
    'FirstSamplesDataset', 'RISDoADataset', 'write_demo_shapes'
]
