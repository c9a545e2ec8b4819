from .dist_utils import fail_together, raise_if_any_rank_failed
from .export import export_student, student_config, student_state_dict
from .knn import extract_features, knn_accuracy
from .preflight import ConfigCheckError, check_config, use_checkpoint_teacher
from .state_dict import key_prefixes, read_state_dict

__all__ = [
    'ConfigCheckError', 'check_config', 'export_student', 'extract_features',
    'fail_together', 'key_prefixes', 'knn_accuracy',
    'raise_if_any_rank_failed', 'read_state_dict', 'student_config',
    'student_state_dict', 'use_checkpoint_teacher'
]
