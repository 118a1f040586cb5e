from .dfl_box_coder import DFLBoxCoder

__all__ = ['DFLBoxCoder']
