"""Hooks that the tests load into real training runs (via custom_imports)."""
import os
import os.path as osp
import signal

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
                    for name, param in _unwrap(
                        runner.model).named_parameters()
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


def _kill_self():
    # SIGKILL cannot be caught: no cleanup handler, no exit hook runs.
    os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class KillAfterEpochHook(Hook):
    """SIGKILL the run once ``epoch`` (1-based) is trained and saved."""

    priority = 'LOWEST'  # after CheckpointHook's after_train_epoch

    def __init__(self, epoch):
        self.epoch = epoch

    def after_train_epoch(self, runner):
        if runner.epoch + 1 == self.epoch:
            _kill_self()


@HOOKS.register_module()
class KillDuringSaveHook(Hook):
    """SIGKILL the run at one point of saving ``epoch`` (1-based).

    Saving writes the checkpoint and then the ``last_checkpoint`` pointer,
    each to a temporary file that is fsynced and renamed, then prunes old
    checkpoints. ``at`` names the moment:

    - ``'checkpoint'``: the checkpoint's bytes are written, not renamed;
    - ``'before_pointer'``: the checkpoint is renamed, the pointer not begun;
    - ``'pointer'``: the pointer's bytes are written, not renamed;
    - ``'before_prune'``: the pointer is renamed, nothing pruned yet.
    """

    MOMENTS = {
        'checkpoint': ('fsync', 1),
        'before_pointer': ('replace', 1),
        'pointer': ('fsync', 2),
        'before_prune': ('replace', 2),
    }

    def __init__(self, epoch, at):
        self.epoch = epoch
        self.call, self.count = self.MOMENTS[at]

    def before_save_checkpoint(self, runner, checkpoint):
        if runner.epoch + 1 != self.epoch:
            return
        calls = dict(fsync=0, replace=0)
        real = dict(fsync=os.fsync, replace=os.replace)

        def counted(name):

            def call(*args):
                result = real[name](*args)
                calls[name] += 1
                if name == self.call and calls[name] == self.count:
                    _kill_self()
                return result

            return call

        os.fsync = counted('fsync')
        os.replace = counted('replace')
