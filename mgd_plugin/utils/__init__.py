from .dist_utils import fail_together, raise_if_any_rank_failed
from .export import export_student, student_config, student_state_dict
from .preflight import ConfigCheckError, check_config, use_checkpoint_teacher
from .state_dict import key_prefixes, read_state_dict

__all__ = [
    'ConfigCheckError', 'check_config', 'export_student', 'fail_together',
    'key_prefixes', 'raise_if_any_rank_failed', 'read_state_dict',
    'student_config', 'student_state_dict', 'use_checkpoint_teacher'
]
