from .export import export_student, student_config, student_state_dict
from .preflight import ConfigCheckError, check_config, use_checkpoint_teacher
from .state_dict import key_prefixes, read_state_dict

__all__ = [
    'ConfigCheckError', 'check_config', 'export_student', 'key_prefixes',
    'read_state_dict', 'student_config', 'student_state_dict',
    'use_checkpoint_teacher'
]
