"""MMPretrain's MoCo (v1/v2) with the options of MoCo's ablations."""
import logging
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmengine.dist import get_world_size
from mmengine.logging import print_log
from mmpretrain.models import MoCo
from mmpretrain.models.utils import batch_shuffle_ddp, batch_unshuffle_ddp
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import nn

from ..utils import MomentumEncoder, check_encoder_momentum


def check_queue_length(queue_len: int, batch_size: int,
                       world_size: int) -> None:
    """Raise a ValueError unless ``queue_len`` is a multiple of the global
    batch ``batch_size * world_size`` (the keys of every rank are enqueued
    together, and the queue pointer must wrap around exactly)."""
    global_batch = batch_size * world_size
    if queue_len % global_batch:
        raise ValueError(
            f'MoCo queue_len={queue_len} is not a multiple of the global '
            f'batch size {global_batch} ({batch_size} images per process x '
            f'{world_size} process(es)); choose a queue length that is (e.g. '
            f'{max(1, queue_len // global_batch) * global_batch}), and set '
            'train_dataloader.drop_last=True so that no batch is smaller.')


@MODELS.register_module()
class ConfigurableMoCo(MoCo):
    """MMPretrain's :class:`~mmpretrain.models.MoCo` with shuffled BN as an
    option and the momentum in MoCo's notation.

    Query encoder, momentum (key) encoder, queue, contrastive head and the
    queue update (keys gathered from all ranks) are MMPretrain's; this
    class replaces only the key computation and checks its settings:

    * ``shuffle_bn=False`` computes each rank's keys on its own batch (the
      "BN" rows of MoCo's ablation); ``True`` (MMPretrain's only way)
      shuffles the key batch across ranks so that BatchNorm statistics
      cannot leak which key is the positive. With one process the shuffle
      would only permute the batch, which leaves BatchNorm statistics
      unchanged: it is skipped, with a warning.
    * ``encoder_momentum`` is MoCo's m in [0, 1] (0.999 in the paper,
      0 and 0.9 in its ablation). MMPretrain's ``momentum`` is MMEngine's
      EMA momentum ``1 - m``, which must lie strictly between 0 and 1.
    * ``queue_len`` must be a multiple of the global batch size. MMPretrain
      asserts this when the first keys are enqueued; here every batch is
      checked before the forward pass, and ``tools/train.py`` checks the
      config before anything is built.

    The contrastive loss is logged as ``loss_contrastive``.

    Args:
        backbone (dict): the query backbone.
        neck (dict): the projection (``MoCoV2Neck`` for MoCo-v2).
        head (dict): the loss head (``ContrastiveHead``, with the
            temperature).
        queue_len (int): negative keys in the queue (65536 in MoCo-v2).
        feat_dim (int): the dimension of queries and keys.
        encoder_momentum (float): MoCo's m; the key encoder is updated to
            ``m * key + (1 - m) * query`` before every step.
        shuffle_bn (bool): shuffle the key batch across ranks.
        pretrained, data_preprocessor, init_cfg: as for MMPretrain's MoCo.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 queue_len: int = 65536,
                 feat_dim: int = 128,
                 encoder_momentum: float = 0.999,
                 shuffle_bn: bool = True,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        if 'momentum' in kwargs:
            raise ValueError(
                f'{type(self).__name__} takes encoder_momentum, MoCo\'s m '
                '(0.999), not momentum, MMPretrain\'s EMA momentum (1 - m = '
                f"0.001); got momentum={kwargs['momentum']!r}.")
        if kwargs:
            raise TypeError(f'{type(self).__name__} got unexpected arguments '
                            f'{sorted(kwargs)}.')
        encoder_momentum = check_encoder_momentum(encoder_momentum)
        if (isinstance(queue_len, bool) or not isinstance(queue_len, int)
                or queue_len <= 0):
            raise ValueError(
                f'queue_len must be a positive int, got {queue_len!r}.')
        # MoCo builds an MMEngine EMA, which refuses 1 - m in {0, 1}: build
        # it with a value it accepts, then replace it.
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            queue_len=queue_len,
            feat_dim=feat_dim,
            momentum=0.5,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.encoder_k = MomentumEncoder(
            nn.Sequential(self.backbone, self.neck), encoder_momentum)
        self.shuffle_bn = bool(shuffle_bn)
        self._warned_single_process_shuffle = False

    @property
    def encoder_momentum(self) -> float:
        """MoCo's m."""
        return self.encoder_k.encoder_momentum

    def check_batch_size(self, batch_size: int) -> None:
        """Raise a ValueError if a batch of ``batch_size`` images per process
        cannot fill the queue evenly."""
        check_queue_length(self.queue_len, batch_size, get_world_size())

    def query_features(self, im_q: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) query view -> (N, feat_dim) L2-normalised queries."""
        return F.normalize(self.neck(self.backbone(im_q))[0], dim=1)

    @torch.no_grad()
    def momentum_keys(self, im_k: torch.Tensor) -> torch.Tensor:
        """Update the key encoder, then encode the key view.

        Args:
            im_k (Tensor): (N, C, H, W), this rank's key view.

        Returns:
            Tensor: (N, feat_dim) L2-normalised keys, row i for image i of
            ``im_k`` (with shuffled BN computed in the batch of another
            rank, then sent back).
        """
        self.encoder_k.update_parameters(
            nn.Sequential(self.backbone, self.neck))
        shuffle = self.shuffle_bn and get_world_size() > 1
        if self.shuffle_bn and not shuffle:
            self._warn_single_process_shuffle()
        if shuffle:
            im_k, idx_unshuffle = batch_shuffle_ddp(im_k)
        keys = F.normalize(self.encoder_k(im_k)[0], dim=1)
        if shuffle:
            keys = batch_unshuffle_ddp(keys, idx_unshuffle)
        return keys

    def _warn_single_process_shuffle(self) -> None:
        if self._warned_single_process_shuffle:
            return
        self._warned_single_process_shuffle = True
        print_log(
            'shuffle_bn=True has no effect with a single process: shuffling '
            'one batch does not change its BatchNorm statistics, so the key '
            'batch is not shuffled. Shuffled BN needs several processes '
            '(tools/dist_train.sh); set shuffle_bn=False to silence this.',
            logger='current',
            level=logging.WARNING)

    def contrastive_loss(self, q: torch.Tensor,
                         k: torch.Tensor) -> torch.Tensor:
        """InfoNCE of queries (N, D) against their keys (N, D) and the
        queue (D, K), through the head (temperature, cross-entropy)."""
        l_pos = torch.einsum('nc,nc->n', q, k).unsqueeze(-1)
        # The queue is updated in place after this step: the backward pass
        # needs the values used here.
        l_neg = torch.einsum('nc,ck->nk', q, self.queue.clone().detach())
        return self.head.loss(l_pos, l_neg)

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Contrastive loss of two views ``inputs = [im_q, im_k]``, each
        (N, C, H, W); enqueues this step's keys of every rank."""
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError(
                'MoCo needs two views of every image: a train pipeline with '
                "dict(type='MultiView', num_views=2, ...) and "
                "collate_fn=dict(type='default_collate').")
        im_q, im_k = inputs[0], inputs[1]
        self.check_batch_size(im_q.size(0))
        q = self.query_features(im_q)
        k = self.momentum_keys(im_k)
        loss = self.contrastive_loss(q, k)
        self._dequeue_and_enqueue(k)
        return dict(loss_contrastive=loss)
