"""Hooks that the tests load into real training runs (via custom_imports)."""
import os
import os.path as osp

import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


@HOOKS.register_module()
class StateProbeHook(Hook):
    """Dump what the run holds before and after training, per rank."""

    priority = 'LOWEST'

    def __init__(self, out_dir):
        self.out_dir = out_dir

    def _dump(self, runner, stage):
        os.makedirs(self.out_dir, exist_ok=True)
        torch.save(
            dict(
                epoch=runner.epoch,
                iter=runner.iter,
                world_size=get_world_size(),
                state_dict=_unwrap(runner.model).state_dict(),
                parameters={
                    name: param.detach().clone()
                    for name, param in _unwrap(runner.model).named_parameters()
                },
                training={
                    name: module.training
                    for name, module in _unwrap(runner.model).named_modules()
                },
                optimizer=runner.optim_wrapper.state_dict()),
            osp.join(self.out_dir, f'{stage}_rank{get_rank()}.pth'))

    def before_train(self, runner):
        self._dump(runner, 'before_train')

    def after_train(self, runner):
        self._dump(runner, 'after_train')


@HOOKS.register_module()
class CrashDuringSaveHook(Hook):
    """Kill the run in the middle of a file write while saving ``epoch``.

    Bytes are being written when ``os.fsync`` runs; raising there is what an
    interrupt at the worst moment looks like. ``fsync_call=1`` interrupts the
    checkpoint itself, ``fsync_call=2`` the ``last_checkpoint`` pointer
    written after it.
    """

    def __init__(self, epoch, fsync_call=1):
        self.epoch = epoch
        self.fsync_call = fsync_call

    def before_save_checkpoint(self, runner, checkpoint):
        if runner.epoch + 1 != self.epoch:
            return
        real_fsync = os.fsync
        calls = []

        def interrupted(fd):
            calls.append(fd)
            if len(calls) == self.fsync_call:
                raise KeyboardInterrupt('simulated kill while saving')
            return real_fsync(fd)

        os.fsync = interrupted
