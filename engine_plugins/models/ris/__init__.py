"""DoA covariance network, its losses and the stabilized eigh."""
from .losses import (frobenius_loss, music_loss, predicted_projector,
                     steering_projector, subspace_loss)
from .ris_covariance_net import RISCovarianceNet
from .stable_eigh import StableEigh, load_diagonal, stable_eigh

__all__ = [
    'RISCovarianceNet', 'StableEigh', 'frobenius_loss', 'load_diagonal',
    'music_loss', 'predicted_projector', 'stable_eigh',
    'steering_projector', 'subspace_loss'
]
