"""Matching Guided Distillation: teacher + student, like MMRazor's
SingleTeacherDistill, with the channel matching pass."""
import torch
from mmrazor.models.algorithms import SingleTeacherDistill
from mmrazor.registry import MODELS

from ..distillers import MatchingGuidedDistiller
from ..utils import load_teacher_checkpoint
from .channel_matching_mixin import ChannelMatchingMixin


@MODELS.register_module()
class MatchingGuidedDistillation(ChannelMatchingMixin, SingleTeacherDistill):
    """MGD (Yue et al., ECCV 2020) on top of MMRazor's SingleTeacherDistill.

    The teacher margins come from the teacher BatchNorms named in
    ``distiller.margin_bns`` and follow the teacher's weights (see
    :class:`ChannelMatchingMixin`). The channel matching lives in the
    distiller's reducers as buffers, so it is saved in and restored from
    checkpoints; :meth:`matching_pass` recomputes it
    (``MatchingUpdateHook`` decides when).

    Args:
        distiller (dict): a :class:`MatchingGuidedDistiller` config.
        **kwargs: the arguments of ``SingleTeacherDistill``.
    """

    def __init__(self, distiller: dict, **kwargs) -> None:
        # Loaded here rather than by SingleTeacherDistill, whose loader only
        # logs the keys that do not fit.
        teacher_ckpt = kwargs.pop('teacher_ckpt', None)
        super().__init__(distiller=distiller, teacher_ckpt=None, **kwargs)
        if teacher_ckpt:
            load_teacher_checkpoint(self.teacher, teacher_ckpt)
        if not isinstance(self.distiller, MatchingGuidedDistiller):
            raise TypeError('MatchingGuidedDistillation needs a '
                            'MatchingGuidedDistiller, got '
                            f'{type(self.distiller).__name__}.')
        # The recorders keep references to pre-ReLU tensors; an in-place
        # ReLU would overwrite them (SingleTeacherDistill already does this
        # for the teacher).
        self.set_module_inplace_false(self.student, 'self.student')
        self._init_channel_matching()

    def matching_forward(self, inputs: torch.Tensor) -> None:
        self.teacher(inputs, None, mode='tensor')
        self.student(inputs, None, mode='tensor')
