from .grad_sanity_optim_wrapper import (AmpGradSanityOptimWrapper,
                                        GradSanityMixin,
                                        GradSanityOptimWrapper)
from .portable_amp_optim_wrapper import PortableAmpOptimWrapper

__all__ = [
    'AmpGradSanityOptimWrapper', 'GradSanityMixin', 'GradSanityOptimWrapper',
    'PortableAmpOptimWrapper'
]
