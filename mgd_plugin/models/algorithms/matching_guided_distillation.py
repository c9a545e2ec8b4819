"""Matching Guided Distillation: teacher + student, like MMRazor's
SingleTeacherDistill, with the channel matching pass."""
import math
import time
import warnings
from typing import Dict, Iterable

import numpy as np
import torch
from mmengine.dist import all_reduce, broadcast_object_list, get_dist_info
from mmengine.utils import ProgressBar
from mmrazor.models.algorithms import SingleTeacherDistill
from mmrazor.registry import MODELS

from ...matching import match_channels
from ..distillers import MatchingGuidedDistiller
from ..utils import load_teacher_checkpoint


@MODELS.register_module()
class MatchingGuidedDistillation(SingleTeacherDistill):
    """MGD (Yue et al., ECCV 2020) on top of MMRazor's SingleTeacherDistill.

    The teacher margins are computed once, at build time, from the teacher
    BatchNorms named in ``distiller.margin_bns`` (after ``teacher_ckpt`` is
    loaded). The channel matching lives in the distiller's reducers as
    buffers, so it is saved in and restored from checkpoints;
    :meth:`matching_pass` recomputes it (``MatchingUpdateHook`` decides
    when).

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
        self.distiller.init_margins(self.teacher)
        # The 1-based epoch the installed matching was made for (0: none);
        # checkpointed, so that a resumed run knows whether one is due.
        self.register_buffer('matching_epoch',
                             torch.zeros((), dtype=torch.int64))

    @property
    def matching_installed(self) -> bool:
        return all(
            bool(self.distiller.reducer(p).matching_installed)
            for p in self.distiller.positions)

    @torch.no_grad()
    def matching_pass(self,
                      dataloader: Iterable,
                      num_samples: int,
                      show_progress: bool = True,
                      epoch: int = 0) -> Dict[str, dict]:
        """Recompute the channel matching of every position.

        Teacher and student run in eval mode over up to ``num_samples``
        images (split between the ranks: each rank processes its share of a
        rank-partitioned dataloader), the (S, T) cost sums are added over
        ranks, solved once on rank 0 and broadcast, so that every rank
        installs the same groups.

        Args:
            dataloader: yields batches for ``data_preprocessor``; under DDP
                each rank's share (e.g. ``DefaultSampler``).
            num_samples (int): images over all ranks.
            show_progress (bool): a progress bar on rank 0.
            epoch (int): the 1-based epoch the matching is made for, stored
                in :attr:`matching_epoch`.

        Returns:
            dict: per reducer name, ``solve_time`` (s), ``mean_cost`` (mean
            matched cost per teacher channel) and ``changed`` (fraction of
            assignment entries that changed; absent on the first matching),
            or ``skipped=True`` if its costs were not finite.
        """
        rank, world_size = get_dist_info()
        quota = math.ceil(num_samples / world_size)
        was_training = self.training
        self.eval()
        distiller = self.distiller
        distiller.reset_matching_costs()
        progress = ProgressBar(quota) if show_progress and rank == 0 else None
        seen = 0
        try:
            for data in dataloader:
                if seen >= quota:
                    break
                data = self.data_preprocessor(data, False)
                take = min(len(data['inputs']), quota - seen)
                inputs = data['inputs'][:take]
                with distiller.teacher_recorders, distiller.student_recorders:
                    self.teacher(inputs, None, mode='tensor')
                    self.student(inputs, None, mode='tensor')
                distiller.accumulate_matching_costs(take)
                seen += take
                if progress is not None:
                    progress.update(take)
        finally:
            self.train(was_training)
        if progress is not None:
            progress.file.write('\n')

        count = torch.tensor(float(seen), dtype=torch.float64)
        costs = distiller.matching_costs()
        if world_size > 1:
            device = next(iter(costs.values())).device if costs else 'cpu'
            count = count.to(device)
            all_reduce(count, op='sum')
            for cost in costs.values():
                all_reduce(cost, op='sum')
        if float(count) == 0:
            raise ValueError('The matching dataloader yielded no samples.')

        means = {name: cost / count for name, cost in costs.items()}
        finite = {name: bool(torch.isfinite(mean).all())
                  for name, mean in means.items()}
        solved = [None]
        if rank == 0:
            solved[0] = {}
            for position in distiller.positions:
                if not finite[position.name]:
                    continue
                start = time.perf_counter()
                assignment = match_channels(
                    means[position.name].cpu().numpy(),
                    sparse=distiller.reducer(position).sparse_matching)
                solved[0][position.name] = (assignment,
                                            time.perf_counter() - start)
        if world_size > 1:
            broadcast_object_list(solved, src=0)

        report = {}
        for position in distiller.positions:
            name = position.name
            if not finite[name]:
                warnings.warn(
                    f'MGD matching: non-finite features at position {name!r}'
                    '; keeping its previous matching.', RuntimeWarning)
                report[name] = dict(skipped=True)
                continue
            assignment, solve_time = solved[0][name]
            report[name] = self._install(position, means[name], assignment,
                                         solve_time)
        self.matching_epoch.fill_(epoch)
        return report

    def _install(self, position, mean_cost, assignment, solve_time) -> dict:
        reducer = self.distiller.reducer(position)
        cost = mean_cost.cpu().numpy()
        if reducer.sparse_matching:
            matched = cost[np.arange(len(assignment)), assignment]
        else:
            matched = cost[assignment, np.arange(len(assignment))]
        stats = dict(solve_time=solve_time, mean_cost=float(matched.mean()))
        if bool(reducer.matching_installed):
            previous = reducer.assignment.cpu().numpy()
            stats['changed'] = float(np.mean(previous != assignment))
        reducer.update_matching(assignment)
        return stats
