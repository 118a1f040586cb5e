from .audio import AudioChatDataset, audio_lm_collate
from .demo_shapes import DemoShapesDataset, write_demo_shapes
from .first_samples_dataset import FirstSamplesDataset
from .ris import RISDoADataset

__all__ = [
    'AudioChatDataset', 'audio_lm_collate', 'DemoShapesDataset',
    'FirstSamplesDataset', 'RISDoADataset', 'write_demo_shapes'
]
