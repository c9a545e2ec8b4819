"""MoCo-v2 with Matching Guided Distillation from a frozen teacher."""
import copy
from typing import Dict, List, Optional

import torch
from mmengine.registry import DefaultScope
from mmengine.utils import is_list_of
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from mmrazor.models.utils import add_prefix
from mmrazor.registry import MODELS as RAZOR_MODELS
from torch import nn

from ..algorithms.channel_matching_mixin import ChannelMatchingMixin
from ..distillers import MatchingGuidedDistiller
from ..utils import load_teacher_checkpoint
from .configurable_moco import ConfigurableMoCo

TEACHER_CHECKPOINT_PREFIX = 'backbone.'


def inplace_off(module: nn.Module) -> None:
    """Turn off in-place activations, so that tensors recorded as a ReLU's
    input stay pre-ReLU."""
    for submodule in module.modules():
        if hasattr(submodule, 'inplace'):
            submodule.inplace = False


@MODELS.register_module()
class MoCoMGD(ChannelMatchingMixin, ConfigurableMoCo):
    """MoCo-v2 whose query backbone is also distilled from a frozen
    teacher backbone with MGD (the extension of the MGD paper's code).

    The student is a whole :class:`ConfigurableMoCo` (query and momentum
    encoders, queue, contrastive head). The teacher is a backbone alone,
    ``teacher_backbone``: always in eval mode, without gradients (its
    parameters have ``requires_grad=False``, so the optimiser never
    updates them), outside the momentum encoder, and under its own key
    prefix, so that ``Pretrained(prefix='backbone.')`` on a checkpoint of
    this model loads the *student's* backbone.

    In each step, the teacher backbone runs on the query view and the MGD
    losses compare its recorded features with the query backbone's,
    through a :class:`MatchingGuidedDistiller` (the same positions, reducers,
    loss and matching pass as classification distillation). Recorder
    sources and ``margin_bn`` names are relative to the backbones
    (``layer1.1.relu``, not ``backbone.layer1.1.relu``).
    ``MatchingUpdateHook`` runs the matching pass on single-view batches
    (``matching_forward``).

    Logged losses: ``loss_contrastive`` and ``distill.loss_mgd{k}``.

    Args:
        backbone, neck, head: the student MoCo (see
            :class:`ConfigurableMoCo`).
        teacher_backbone (dict): the teacher's backbone config.
        distiller (dict): a :class:`MatchingGuidedDistiller` config (built
            in the ``mmrazor`` scope).
        teacher_ckpt (str, optional): a MoCo checkpoint (local file or
            URL); its ``backbone.*`` weights are loaded into the teacher,
            its other keys (momentum encoder, neck, queue) are ignored.
            Every teacher weight must be there with its shape.
        **kwargs: the other arguments of :class:`ConfigurableMoCo`
            (``queue_len``, ``feat_dim``, ``encoder_momentum``,
            ``shuffle_bn``, ``data_preprocessor``, ``init_cfg``).
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 teacher_backbone: dict,
                 distiller: dict,
                 teacher_ckpt: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head, **kwargs)
        teacher = MODELS.build(teacher_backbone)
        if teacher_ckpt:
            load_teacher_checkpoint(
                teacher,
                teacher_ckpt,
                prefix=TEACHER_CHECKPOINT_PREFIX,
                head_prefixes=())
        teacher.requires_grad_(False)
        self.teacher_backbone = teacher

        distiller = copy.deepcopy(dict(distiller))
        scope = distiller.pop('_scope_', 'mmrazor')
        with DefaultScope.overwrite_default_scope(scope):
            self.distiller = RAZOR_MODELS.build(distiller)
        if not isinstance(self.distiller, MatchingGuidedDistiller):
            raise TypeError('MoCoMGD needs a MatchingGuidedDistiller, got '
                            f'{type(self.distiller).__name__}.')
        # After MoCo copied the query encoder into the momentum encoder,
        # which needs neither recorders nor pre-ReLU tensors.
        inplace_off(self.backbone)
        inplace_off(self.teacher_backbone)
        self.distiller.prepare_from_student(self.backbone)
        self.distiller.prepare_from_teacher(self.teacher_backbone)
        self.train()
        self._init_channel_matching()

    @property
    def teacher(self) -> nn.Module:
        """The module the distiller's teacher recorders and ``margin_bns``
        are named in (:class:`ChannelMatchingMixin`)."""
        return self.teacher_backbone

    def train(self, mode: bool = True) -> 'MoCoMGD':
        super().train(mode)
        self.teacher_backbone.eval()
        return self

    def matching_inputs(self, data: dict) -> torch.Tensor:
        """The images of a preprocessed matching batch: a single view
        (N, C, H, W), or the first of several views."""
        inputs = data['inputs']
        if is_list_of(inputs, torch.Tensor):
            return inputs[0]
        return inputs

    def matching_forward(self, inputs: torch.Tensor) -> None:
        self.teacher_backbone(inputs)
        self.backbone(inputs)

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """MoCo's contrastive loss plus the MGD losses between the teacher
        and query backbones on the query view ``inputs[0]``."""
        if isinstance(inputs, (list, tuple)) and inputs:
            with torch.no_grad(), self.distiller.teacher_recorders:
                self.teacher_backbone(inputs[0])
        # Only the query backbone carries recorder hooks: the momentum
        # encoder is a copy made before they were registered.
        with self.distiller.student_recorders:
            losses = super().loss(inputs, data_samples, **kwargs)
        losses.update(
            add_prefix(self.distiller.compute_distill_losses(), 'distill'))
        return losses
