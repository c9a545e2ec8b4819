from .margin import bn_margin
from .momentum_encoder import MomentumEncoder, check_encoder_momentum
from .teacher_checkpoint import TeacherCheckpointError, load_teacher_checkpoint

__all__ = [
    'bn_margin', 'check_encoder_momentum', 'load_teacher_checkpoint',
    'MomentumEncoder', 'TeacherCheckpointError'
]
