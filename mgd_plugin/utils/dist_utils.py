"""Failing together under DDP."""
import pickle
from contextlib import contextmanager
from typing import Iterator, Optional

from mmengine.dist import all_gather_object, get_dist_info


def _portable(error: BaseException) -> BaseException:
    """``error`` itself if it survives pickling, else a RuntimeError with
    its type and message."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f'{type(error).__name__}: {error}')


def raise_if_any_rank_failed(error: Optional[Exception]) -> None:
    """Collective: every rank raises if any rank passes an error.

    Every rank must call this, with the exception it caught or None. All
    ranks then raise the error of the lowest failing rank (same type, same
    message); the failing rank re-raises its own exception object, with its
    traceback. Without a process group it just re-raises ``error``.

    A step that only one rank runs (e.g. solving on rank 0 before a
    broadcast) would otherwise leave the other ranks waiting forever in
    the next collective.
    """
    rank, world_size = get_dist_info()
    if world_size == 1:
        if error is not None:
            raise error
        return
    errors = all_gather_object(None if error is None else _portable(error))
    failed = [r for r, e in enumerate(errors) if e is not None]
    if not failed:
        return
    first = failed[0]
    if rank == first:
        raise error
    shared = errors[first]
    if hasattr(shared, 'add_note'):  # Python >= 3.11
        shared.add_note(f'(raised on rank {first} of {world_size}; every '
                        'rank stops with this error)')
    raise shared


@contextmanager
def fail_together() -> Iterator[None]:
    """Run a block on every rank; if it raises on any rank, raise on all.

    Every rank must enter the block (it may do nothing there). See
    :func:`raise_if_any_rank_failed`.
    """
    error = None
    try:
        yield
    except Exception as caught:
        error = caught
    raise_if_any_rank_failed(error)
