"""One recorded forward of a network, for finding MGD feature positions.

:func:`trace_forward` runs a network once and keeps, in call order, every
call of an activation module (its input and output), every call of a
BatchNorm (its output) and the output of every *block*. Blocks are the
network's composite submodules reached through ``nn.Sequential`` /
``nn.ModuleList`` / ``nn.ModuleDict`` containers (MMPretrain ResNet's
``layer1.0``, MobileNet-V2's ``layer3.0``, an mmcv ``ConvModule`` directly
under the backbone); bare layers under the network (ResNet's stem
``conv1``/``bn1``/``relu``/``maxpool``) are not blocks.

Tensors are kept by reference, together with their version counters, so
that the position finder can tell whether an activation's input is a
BatchNorm's output as it left the BatchNorm or was changed in place
afterwards (MMPretrain ResNet blocks add the shortcut in place:
``out += identity``).
"""
from dataclasses import dataclass, field
from typing import Iterator, List, Tuple

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

# Element-wise activations whose input MGD can record. Gates (Sigmoid,
# Hardsigmoid in squeeze-excitation) are not feature activations.
ACTIVATION_TYPES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.CELU,
                    nn.SELU, nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish)
# mmcv activations that are not subclasses of the torch ones.
ACTIVATION_NAMES = ('HSwish', 'Swish')
CONTAINER_TYPES = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def is_activation(module: nn.Module) -> bool:
    return (isinstance(module, ACTIVATION_TYPES)
            or type(module).__name__ in ACTIVATION_NAMES)


# Calls hold tensors: compared by identity, never by value (eq=False).
@dataclass(eq=False)
class ActivationCall:
    """One call of an activation module; ``input`` is (N, C, H, W)."""
    order: int  # position in the forward's sequence of events
    module: str  # full module name
    call: int  # how many calls of this module came before
    input: torch.Tensor
    input_version: int  # the input's version counter at the call
    output: torch.Tensor


@dataclass(eq=False)
class NormCall:
    """One call of a BatchNorm; ``output`` is (N, C, H, W)."""
    order: int
    module: str
    call: int
    output: torch.Tensor
    version: int  # the output's version counter when it was returned


@dataclass(eq=False)
class BlockCall:
    """One call of a block, with the event orders at entry and exit."""
    name: str
    start: int
    end: int
    output: torch.Tensor  # (N, C, H, W)

    @property
    def shape(self) -> Tuple[int, int, int]:
        """(C, H, W) of the output."""
        return tuple(self.output.shape[1:])


@dataclass
class FeatureTrace:
    """What one forward of a network did, in call order."""
    activations: List[ActivationCall] = field(default_factory=list)
    norms: List[NormCall] = field(default_factory=list)
    blocks: List[BlockCall] = field(default_factory=list)

    def activations_between(self, start: int,
                            end: int) -> List[ActivationCall]:
        """The activation calls made strictly between two event orders."""
        return [a for a in self.activations if start < a.order < end]


def iter_blocks(module: nn.Module,
                prefix: str = '') -> Iterator[Tuple[str, nn.Module]]:
    """The blocks of ``module`` (see the module docstring), with their full
    names, in registration order."""
    for name, child in module.named_children():
        full_name = f'{prefix}{name}'
        if isinstance(child, CONTAINER_TYPES):
            yield from iter_blocks(child, full_name + '.')
        elif next(child.children(), None) is not None:
            yield full_name, child


def _is_feature_map(tensor) -> bool:
    return isinstance(tensor, torch.Tensor) and tensor.dim() == 4


@torch.no_grad()
def trace_forward(network: nn.Module,
                  inputs: torch.Tensor,
                  prefix: str = '') -> FeatureTrace:
    """Run ``network(inputs)`` once and record its activation, BatchNorm and
    block calls.

    Args:
        network (nn.Module): a backbone, in eval mode with no in-place
            activation (an in-place activation overwrites its input).
        inputs (Tensor): (N, C, H, W) images.
        prefix (str): prepended to every module name (``'backbone.'`` when
            ``network`` is a classifier's backbone).
    """
    trace = FeatureTrace()
    counter = iter(range(1 << 62))
    calls = {}
    open_blocks = {}
    handles = []

    def next_call(name):
        calls[name] = calls.get(name, -1) + 1
        return calls[name]

    # Every call counts towards a recorder's record_idx, also those that
    # are not on feature maps.
    def on_activation(module, args, output, name):
        call = next_call(name)
        if _is_feature_map(args[0]) and _is_feature_map(output):
            trace.activations.append(
                ActivationCall(
                    next(counter), name, call, args[0], args[0]._version,
                    output))

    def on_norm(module, args, output, name):
        call = next_call(name)
        if _is_feature_map(output):
            trace.norms.append(
                NormCall(next(counter), name, call, output, output._version))

    def on_block_start(module, args, name):
        open_blocks.setdefault(name, []).append(next(counter))

    def on_block_end(module, args, output, name):
        start = open_blocks[name].pop()
        if _is_feature_map(output):
            trace.blocks.append(BlockCall(name, start, next(counter), output))

    try:
        for name, module in network.named_modules():
            full_name = prefix + name
            if is_activation(module):
                handles.append(
                    module.register_forward_hook(lambda m, a, o, n=full_name:
                                                 on_activation(m, a, o, n)))
            elif isinstance(module, _BatchNorm):
                handles.append(
                    module.register_forward_hook(
                        lambda m, a, o, n=full_name: on_norm(m, a, o, n)))
        for name, module in iter_blocks(network, prefix):
            handles.append(
                module.register_forward_pre_hook(
                    lambda m, a, n=name: on_block_start(m, a, n)))
            handles.append(
                module.register_forward_hook(
                    lambda m, a, o, n=name: on_block_end(m, a, o, n)))
        network(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return trace
