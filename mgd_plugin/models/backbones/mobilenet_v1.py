"""MobileNet-V1 (Howard et al., 2017) as an MMPretrain backbone."""
import numbers
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.models.utils import make_divisible
from mmpretrain.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm


@MODELS.register_module()
class MobileNetV1(BaseBackbone):
    """MobileNet-V1 backbone, the ImageNet student of the MGD paper.

    A 3x3 stride-2 stem ``conv1`` (conv + norm + activation) followed by 13
    depthwise-separable blocks ``layer1`` ... ``layer13``. Each block is an
    mmcv ``DepthwiseSeparableConvModule``: ``depthwise_conv`` (3x3,
    one group per channel) then ``pointwise_conv`` (1x1), both ConvModules
    with ``.conv``, ``.bn`` and ``.activate``. For a ``(N, 3, H, W)`` input
    and ``widen_factor=1.0`` the block outputs are:

    ======  ============  ======  ============
    block   index         C       size
    ======  ============  ======  ============
    1       0             64      H/2
    2, 3    1, 2          128     H/4
    4, 5    3, 4          256     H/8
    6-11    5-10          512     H/16
    12, 13  11, 12        1024    H/32
    ======  ============  ======  ============

    Args:
        widen_factor (float): Width multiplier. Every channel count is
            multiplied by it and rounded to a multiple of 8 with
            MMPretrain's ``make_divisible``. Default: 1.0.
        out_indices (int | Sequence[int]): Indices (0 to 12) of the blocks
            whose outputs ``forward`` returns, in the order given.
            Default: (12, ), the last block.
        frozen_stages (int): -1 freezes nothing, 0 the stem, k (1 to 13)
            the stem and blocks 1 to k: their parameters get
            ``requires_grad=False`` and ``train()`` keeps them in eval mode.
            Default: -1.
        conv_cfg (dict, optional): Convolution layer config. Default: None
            (``nn.Conv2d``).
        norm_cfg (dict): Normalisation layer config. Default:
            ``dict(type='BN')``.
        act_cfg (dict): Activation layer config. Default:
            ``dict(type='ReLU')``.
        norm_eval (bool): Keep every BatchNorm in eval mode (frozen running
            statistics) during training. Default: False.
        init_cfg (dict | list[dict], optional): Initialisation config.
            Default: Kaiming for convolutions, 1 for norm weights.
    """

    # Output channels and stride of the 13 depthwise-separable blocks; the
    # stride sits in the depthwise conv.
    arch_settings = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                     (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
                     (1024, 2), (1024, 1)]
    stem_channels = 32

    def __init__(self,
                 widen_factor: float = 1.0,
                 out_indices: Union[int, Sequence[int]] = (12, ),
                 frozen_stages: int = -1,
                 conv_cfg: Optional[Dict] = None,
                 norm_cfg: Dict = dict(type='BN'),
                 act_cfg: Dict = dict(type='ReLU'),
                 norm_eval: bool = False,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = [
                     dict(type='Kaiming', layer=['Conv2d']),
                     dict(
                         type='Constant',
                         val=1,
                         layer=['_BatchNorm', 'GroupNorm'])
                 ]):
        super().__init__(init_cfg)
        num_blocks = len(self.arch_settings)
        if (isinstance(widen_factor, bool)
                or not isinstance(widen_factor, numbers.Real)
                or not widen_factor > 0):
            raise ValueError('MobileNetV1: widen_factor must be a positive '
                             f'number, got {widen_factor!r}')
        if isinstance(out_indices, int):
            out_indices = (out_indices, )
        out_indices = tuple(out_indices)
        if not out_indices:
            raise ValueError('MobileNetV1: out_indices must name at least '
                             'one block')
        for index in out_indices:
            if (isinstance(index, bool) or not isinstance(index, int)
                    or index not in range(num_blocks)):
                raise ValueError(
                    'MobileNetV1: every item of out_indices must be a block '
                    f'index in range(0, {num_blocks}), got {index!r} in '
                    f'{out_indices!r}')
        if (isinstance(frozen_stages, bool)
                or not isinstance(frozen_stages, int)
                or frozen_stages not in range(-1, num_blocks + 1)):
            raise ValueError(
                'MobileNetV1: frozen_stages must be an int in range(-1, '
                f'{num_blocks + 1}) (-1 freezes nothing, 0 the stem, k the '
                f'stem and blocks 1..k), got {frozen_stages!r}')

        self.widen_factor = widen_factor
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.norm_eval = norm_eval

        in_channels = make_divisible(self.stem_channels * widen_factor, 8)
        self.conv1 = ConvModule(
            in_channels=3,
            out_channels=in_channels,
            kernel_size=3,
            stride=2,
            padding=1,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)

        self.layers = []
        self.out_channels = []  # of each block, for heads and positions
        for i, (channels, stride) in enumerate(self.arch_settings):
            out_channels = make_divisible(channels * widen_factor, 8)
            block = DepthwiseSeparableConvModule(
                in_channels=in_channels,
                out_channels=out_channels,
                kernel_size=3,
                stride=stride,
                padding=1,
                conv_cfg=conv_cfg,
                norm_cfg=norm_cfg,
                act_cfg=act_cfg)
            layer_name = f'layer{i + 1}'
            self.add_module(layer_name, block)
            self.layers.append(layer_name)
            self.out_channels.append(out_channels)
            in_channels = out_channels
        self._freeze_stages()

    def forward(self, x: torch.Tensor) -> tuple:
        """``(N, 3, H, W)`` images to the outputs of the blocks in
        ``out_indices``, in that order."""
        x = self.conv1(x)
        outs = {}
        for i, layer_name in enumerate(self.layers):
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs[i] = x
        return tuple(outs[i] for i in self.out_indices)

    def _frozen_modules(self):
        if self.frozen_stages >= 0:
            yield self.conv1
        for i in range(1, self.frozen_stages + 1):
            yield getattr(self, f'layer{i}')

    def _freeze_stages(self):
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        """Set the mode, keeping frozen stages (and, with ``norm_eval``,
        every BatchNorm) in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
