"""RT-DETR: hybrid encoder, query-selection decoder with denoising,
Hungarian-matched criterion, detector."""
from .denoising import DenoisingGroups, DenoisingQueryGenerator
from .hybrid_encoder import HybridEncoder
from .resnet_vd import ResNetVd
from .rtdetr import RTDETR
from .rtdetr_criterion import RTDETRCriterion
from .rtdetr_data_preprocessor import RTDETRDataPreprocessor
from .rtdetr_decoder import DecoderOutputs, RTDETRDecoder
from .rtdetr_varifocal_loss import RTDETRVarifocalLoss

__all__ = [
    'DecoderOutputs', 'DenoisingGroups', 'DenoisingQueryGenerator',
    'HybridEncoder', 'RTDETR', 'RTDETRCriterion', 'RTDETRDataPreprocessor',
    'RTDETRDecoder', 'RTDETRVarifocalLoss', 'ResNetVd'
]
