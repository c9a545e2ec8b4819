from .margin import bn_margin
from .teacher_checkpoint import TeacherCheckpointError, load_teacher_checkpoint

__all__ = ['bn_margin', 'load_teacher_checkpoint', 'TeacherCheckpointError']
