"""When to recompute the MGD channel matching."""
import numbers
from typing import List, Optional, Sequence, Union

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import DATASETS
from mmengine.runner import Runner
from mmpretrain.registry import HOOKS as MMPRETRAIN_HOOKS
from mmrazor.registry import HOOKS

from ...datasets import MatchingSubsetSampler
from .epoch_seed_hook import EpochSeedHook, seed_epoch


def log_schedule(max_epochs: int, num_updates: int = 10) -> List[int]:
    """Log-spaced matching epochs for a run of ``max_epochs`` epochs.

    Epoch ``round(max_epochs ** (k / num_updates))`` for
    ``k = 0 .. num_updates - 1``, duplicates removed: it always starts at
    epoch 1 and the gaps grow geometrically. For 200 epochs and 10 updates:
    ``[1, 2, 3, 5, 8, 14, 24, 41, 69, 118]``, close to the seed recipe's
    hand-picked ``[1, 2, 3, 6, 9, 15, 26, 43, 74, 126]``.
    """
    return sorted({
        int(round(max_epochs**(k / num_updates)))
        for k in range(num_updates)
    })


def _is_positive_int(value) -> bool:
    return (isinstance(value, numbers.Integral)
            and not isinstance(value, bool) and value > 0)


@HOOKS.register_module()
@MMPRETRAIN_HOOKS.register_module()
class MatchingUpdateHook(Hook):
    """Run the MGD matching pass on a schedule.

    Matching epochs are 1-based: "epoch e" means before epoch e trains.
    A run always matches before its first epoch if the model has no
    matching yet (e.g. a list schedule without epoch 1). A resumed run keeps
    the matching from its checkpoint, which was made for the epoch it
    continues with, unless the schedule says one is due that was not made
    (a run extended past its planned end).

    Each matching pass sees ``num_samples`` images drawn at random from
    the whole matching dataset, a fresh subset for every matching, the same
    for a given (seed, epoch), split disjointly between the ranks
    (:class:`MatchingSubsetSampler`, whatever sampler the config names).

    Unless the config has an :class:`EpochSeedHook`, it also reseeds the
    global generators before every epoch as that hook does, so that a
    resumed run draws what the uninterrupted one would have.

    Args:
        dataloader (dict): the matching dataloader config (deterministic,
            validation-style transforms); built like the runner's
            dataloaders. Its ``sampler`` is replaced.
        num_samples (int): images per matching pass over all ranks.
        interval (int, optional): match before epoch 1, 1 + N, 1 + 2N...
            (the reference: 1 on ImageNet, 2 on CUB-200).
        epochs (list[int] | 'log', optional): explicit matching epochs
            (MoCo recipe: ``[1, 2, 3, 6, 9, 15, 26, 43, 74, 126]``), or
            ``'log'`` for :func:`log_schedule` over the run's length.
            Exactly one of ``interval`` and ``epochs``; by default
            ``interval=1``.
        num_log_updates (int): matchings in a ``'log'`` schedule.
        show_progress (bool): a progress bar during the pass on rank 0.
    """

    priority = 'NORMAL'  # before CheckpointHook: the new matching is saved

    def __init__(self,
                 dataloader: dict,
                 num_samples: int = 20000,
                 interval: Optional[int] = None,
                 epochs: Union[Sequence[int], str, None] = None,
                 num_log_updates: int = 10,
                 show_progress: bool = True) -> None:
        if not isinstance(dataloader, dict):
            raise TypeError('MatchingUpdateHook.dataloader must be a '
                            f'dataloader config dict, got {type(dataloader)}')
        if not _is_positive_int(num_samples):
            raise ValueError('MatchingUpdateHook.num_samples must be a '
                             f'positive int, got {num_samples!r}')
        if interval is not None and epochs is not None:
            raise ValueError('MatchingUpdateHook takes interval or epochs, '
                             'not both')
        if epochs is None:
            interval = 1 if interval is None else interval
            if not _is_positive_int(interval):
                raise ValueError('MatchingUpdateHook.interval must be a '
                                 f'positive int, got {interval!r}')
        elif isinstance(epochs, str):
            if epochs != 'log':
                raise ValueError("MatchingUpdateHook.epochs must be a list of "
                                 f"epochs or 'log', got {epochs!r}")
            if not _is_positive_int(num_log_updates):
                raise ValueError('MatchingUpdateHook.num_log_updates must be '
                                 f'a positive int, got {num_log_updates!r}')
        else:
            epochs = list(epochs)
            bad = [e for e in epochs if not _is_positive_int(e)]
            if bad or not epochs:
                raise ValueError(
                    'MatchingUpdateHook.epochs must be positive integers '
                    f'(1-based epochs), got {epochs!r}')
            epochs = sorted(set(int(e) for e in epochs))
        self.dataloader_cfg = dataloader
        self.num_samples = int(num_samples)
        self.interval = interval
        self.epochs = epochs
        self.num_log_updates = num_log_updates
        self.show_progress = show_progress
        self._dataloader = None

    def is_due(self, epoch: int, max_epochs: int) -> bool:
        """Whether the matching is recomputed before 1-based ``epoch``."""
        if self.epochs is None:
            return (epoch - 1) % self.interval == 0
        epochs = (
            log_schedule(max_epochs, self.num_log_updates)
            if self.epochs == 'log' else self.epochs)
        return epoch in epochs

    def _algorithm(self, runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_train(self, runner) -> None:
        algorithm = self._algorithm(runner)
        if not hasattr(algorithm, 'matching_pass'):
            raise TypeError('MatchingUpdateHook needs a model with a channel '
                            'matching (MatchingGuidedDistillation, MoCoMGD), '
                            f'got {type(algorithm).__name__}')
        self._dataloader = self._build_dataloader(runner.seed)
        # A resumed run's checkpoint already holds the matching made for the
        # epoch it continues with (this hook runs before CheckpointHook),
        # unless the run was extended past the epochs it planned for.
        epoch = runner.epoch + 1
        if not algorithm.matching_installed or (
                self.is_due(epoch, runner.max_epochs)
                and int(algorithm.matching_epoch) != epoch):
            self._match(runner, epoch)

    def before_train_epoch(self, runner) -> None:
        # The random drop reducer draws from the global generators; without
        # a reseed from (seed, epoch), a resumed run would draw otherwise.
        if not any(isinstance(hook, EpochSeedHook) for hook in runner.hooks):
            seed_epoch(runner)

    def after_train_epoch(self, runner) -> None:
        # runner.epoch is still the 0-based index of the finished epoch.
        next_epoch = runner.epoch + 2
        if next_epoch <= runner.max_epochs and self.is_due(
                next_epoch, runner.max_epochs):
            self._match(runner, next_epoch)

    def _build_dataloader(self, seed):
        cfg = dict(self.dataloader_cfg)
        named = cfg.pop('sampler', None)
        cfg.pop('batch_sampler', None)
        if named is not None and named.get('type') not in (
                'MatchingSubsetSampler', MatchingSubsetSampler):
            print_log(
                f'MatchingUpdateHook: the matching dataloader\'s sampler '
                f'{named.get("type")!r} is replaced by MatchingSubsetSampler '
                f'({self.num_samples} random images of the whole dataset '
                'per matching, split between the ranks).',
                logger='current')
        cfg['sampler'] = dict(
            type=MatchingSubsetSampler, num_samples=self.num_samples)
        empty = ValueError("MatchingUpdateHook: the matching dataloader's "
                           'dataset is empty; check custom_hooks[...]'
                           '.dataloader.dataset (data root, split, ann_file, '
                           'indices).')
        try:
            dataloader = Runner.build_dataloader(cfg, seed=seed)
        except Exception as error:
            # MMEngine's serialisation of an empty data list fails with an
            # unrelated NumPy message; tell that case apart.
            if self._dataset_is_empty():
                raise empty from error
            raise
        if len(dataloader.dataset) == 0:
            raise empty
        return dataloader

    def _dataset_is_empty(self) -> bool:
        dataset = self.dataloader_cfg.get('dataset')
        if not isinstance(dataset, dict):
            return False
        try:
            return len(DATASETS.build(dict(dataset,
                                           serialize_data=False))) == 0
        except Exception:
            return False

    def _match(self, runner, epoch: int) -> None:
        self._dataloader.sampler.set_epoch(epoch)
        report = self._algorithm(runner).matching_pass(
            self._dataloader, show_progress=self.show_progress, epoch=epoch)
        for name, stats in report.items():
            if stats.get('skipped'):
                continue
            text = (f'MGD matching for epoch {epoch}, {name}: solved in '
                    f'{stats["solve_time"]:.3f} s, mean matched cost '
                    f'{stats["mean_cost"]:.4f}')
            if 'changed' in stats:
                text += f', {stats["changed"]:.1%} of channels moved'
            runner.logger.info(text)
            runner.visualizer.add_scalars(
                {
                    f'mgd/{name}/{key}': value
                    for key, value in stats.items()
                },
                step=epoch)
