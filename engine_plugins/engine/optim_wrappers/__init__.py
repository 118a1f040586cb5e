from .grad_sanity_optim_wrapper import (AmpGradSanityOptimWrapper,
                                        GradSanityMixin,
                                        GradSanityOptimWrapper)

__all__ = [
    'AmpGradSanityOptimWrapper', 'GradSanityMixin', 'GradSanityOptimWrapper'
]
