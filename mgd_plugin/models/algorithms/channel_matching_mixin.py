"""The MGD matching pass, shared by every algorithm that distils through a
:class:`MatchingGuidedDistiller` (classification and MoCo)."""
import math
import time
import warnings
from typing import Dict, Iterable, Optional

import numpy as np
import torch
from mmengine.dist import all_reduce, broadcast_object_list, get_dist_info
from mmengine.utils import ProgressBar

from ...matching import match_channels
from ...utils import fail_together


class ChannelMatchingMixin:
    """Channel matching for an algorithm with a teacher, a student and a
    :class:`MatchingGuidedDistiller`.

    This is the interface ``MatchingUpdateHook`` drives:
    :attr:`matching_installed`, :attr:`matching_epoch` and
    :meth:`matching_pass`. The host class provides ``self.distiller``,
    ``self.teacher`` (the module the distiller's ``margin_bns`` are named
    in), ``self.data_preprocessor``, implements :meth:`matching_forward`,
    and calls :meth:`_init_channel_matching` at the end of its
    ``__init__``.

    Margins are derived from the teacher's BatchNorms, so they are
    recomputed whenever the teacher's weights may have changed: at build,
    after ``init_weights`` (a ``Pretrained`` ``init_cfg`` loads weights
    there) and at the start of every matching pass (after any checkpoint
    loading the runner does).
    """

    def _init_channel_matching(self) -> None:
        # The 1-based epoch the installed matching was made for (0: none);
        # checkpointed, so that a resumed run knows whether one is due.
        self.register_buffer('matching_epoch',
                             torch.zeros((), dtype=torch.int64))
        self.update_margins()

    def matching_forward(self, inputs: torch.Tensor) -> None:
        """Run the teacher and the student on ``inputs`` (N, C, H, W) so
        that the distiller's recorders see the matched features."""
        raise NotImplementedError

    def matching_inputs(self, data: dict) -> torch.Tensor:
        """The image batch in a preprocessed ``data`` dict."""
        return data['inputs']

    def update_margins(self) -> None:
        """Recompute the reducers' margins from the teacher's BatchNorms."""
        self.distiller.init_margins(self.teacher)

    def init_weights(self) -> None:
        super().init_weights()
        self.update_margins()

    @property
    def matching_installed(self) -> bool:
        return all(
            bool(self.distiller.reducer(p).matching_installed)
            for p in self.distiller.positions)

    @torch.no_grad()
    def matching_pass(self,
                      dataloader: Iterable,
                      num_samples: Optional[int] = None,
                      show_progress: bool = True,
                      epoch: int = 0) -> Dict[str, dict]:
        """Recompute the channel matching of every position.

        Teacher and student run in eval mode over this rank's batches; the
        (S, T) cost sums are added over ranks, solved once on rank 0 and
        broadcast, so that every rank installs the same groups. If any rank
        fails (bad features, an empty loader, the solver), every rank
        raises the same error instead of waiting for the others.

        Args:
            dataloader: yields batches for ``data_preprocessor``; under DDP
                this rank's share (``MatchingUpdateHook`` gives it a
                :class:`MatchingSubsetSampler`).
            num_samples (int, optional): stop after ``ceil(num_samples /
                world_size)`` images on each rank; None: the whole loader.
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
        distiller = self.distiller
        with fail_together():
            self.update_margins()
            seen = self._accumulate_costs(
                dataloader,
                None if num_samples is None else math.ceil(num_samples /
                                                           world_size),
                show_progress and rank == 0)

        count = torch.tensor(float(seen), dtype=torch.float64)
        costs = distiller.matching_costs()
        if world_size > 1:
            device = next(iter(costs.values())).device if costs else 'cpu'
            count = count.to(device)
            all_reduce(count, op='sum')
            for cost in costs.values():
                all_reduce(cost, op='sum')
        with fail_together():
            if float(count) == 0:
                raise ValueError('The matching dataloader yielded no samples.')

        means = {name: cost / count for name, cost in costs.items()}
        finite = {
            name: bool(torch.isfinite(mean).all())
            for name, mean in means.items()
        }
        solved = [None]
        with fail_together():
            if rank == 0:
                solved[0] = self._solve(means, finite)
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

    def _accumulate_costs(self, dataloader: Iterable, quota: Optional[int],
                          show_progress: bool) -> int:
        """Feed this rank's images through both networks in eval mode and
        add their costs to the distiller's sums; returns the image count."""
        distiller = self.distiller
        distiller.reset_matching_costs()
        progress = None
        if show_progress:
            total = quota
            if total is None and hasattr(dataloader, 'sampler'):
                total = len(dataloader.sampler)
            progress = ProgressBar(total or 0)
        was_training = self.training
        self.eval()
        seen = 0
        try:
            for data in dataloader:
                if quota is not None and seen >= quota:
                    break
                inputs = self.matching_inputs(
                    self.data_preprocessor(data, False))
                take = len(inputs)
                if quota is not None:
                    take = min(take, quota - seen)
                    inputs = inputs[:take]
                with distiller.teacher_recorders, \
                        distiller.student_recorders:
                    self.matching_forward(inputs)
                distiller.accumulate_matching_costs(take)
                seen += take
                if progress is not None:
                    progress.update(take)
        finally:
            self.train(was_training)
            if progress is not None:
                progress.file.write('\n')
        return seen

    def _solve(self, means: Dict[str, torch.Tensor],
               finite: Dict[str, bool]) -> Dict[str, tuple]:
        solved = {}
        for position in self.distiller.positions:
            if not finite[position.name]:
                continue
            start = time.perf_counter()
            assignment = match_channels(
                means[position.name].cpu().numpy(),
                sparse=self.distiller.reducer(position).sparse_matching)
            solved[position.name] = (assignment, time.perf_counter() - start)
        return solved

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
