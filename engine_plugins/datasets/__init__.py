from .audio import AudioChatDataset, audio_lm_collate
from .first_samples_dataset import FirstSamplesDataset

__all__ = ['AudioChatDataset', 'audio_lm_collate', 'FirstSamplesDataset']
