"""Simulated direction-of-arrival data for antenna arrays and RIS."""
from engine_plugins.structures import ArrayGeometry, ula_response
from .ris_doa_dataset import RISDoADataset
from .simulation import sample_angles, simulate_scene, source_covariance

__all__ = [
    'ArrayGeometry', 'RISDoADataset', 'sample_angles', 'simulate_scene',
    'source_covariance', 'ula_response'
]
