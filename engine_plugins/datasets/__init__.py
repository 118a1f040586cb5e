from .first_samples_dataset import FirstSamplesDataset

__all__ = ['FirstSamplesDataset']
