"""Tests of MatchingGuidedLoss against hand-computed values."""
import mgd_plugin  # noqa: F401  (compat layer before mmrazor.models)

import pytest
import torch
from mmrazor.registry import MODELS

from mgd_plugin.models.losses import MatchingGuidedLoss


def test_hand_computed_value():
    # One sample, one channel, 2x2 positions (student s, target t):
    #   s= 1.0, t= 3.0: t > 0                -> counted, (1-3)^2   = 4
    #   s=-1.0, t=-2.0: s > t                -> counted, (-1+2)^2  = 1
    #   s=-3.0, t=-0.5: s <= t <= 0          -> skipped (would be 6.25)
    #   s= 2.0, t= 0.0: s > t                -> counted, 2^2       = 4
    # sum = 9, divided by N = 1, times loss_weight 0.5 -> 4.5.
    student = torch.tensor([[[[1.0, -1.0], [-3.0, 2.0]]]])
    target = torch.tensor([[[[3.0, -2.0], [-0.5, 0.0]]]])
    loss = MatchingGuidedLoss(loss_weight=0.5)(student, target)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(4.5)


def test_divides_by_batch_size():
    # Two copies of the sample above: the sum doubles, N = 2 halves it.
    student = torch.tensor([[[[1.0, -1.0], [-3.0, 2.0]]]]).repeat(2, 1, 1, 1)
    target = torch.tensor([[[[3.0, -2.0], [-0.5, 0.0]]]]).repeat(2, 1, 1, 1)
    assert MatchingGuidedLoss()(student, target).item() == pytest.approx(9.0)


def test_below_non_positive_target_is_free():
    # s <= t and t <= 0 everywhere, including s == t == 0.
    student = torch.tensor([[[[-5.0, -1.0], [0.0, -0.2]]]])
    target = torch.tensor([[[[-0.1, -1.0], [0.0, -0.2]]]])
    assert MatchingGuidedLoss()(student, target).item() == 0.0


def test_gradient_reaches_student_only():
    student = torch.tensor([[[[1.0, -1.0], [-3.0, 2.0]]]], requires_grad=True)
    target = torch.tensor([[[[3.0, -2.0], [-0.5, 0.0]]]], requires_grad=True)
    MatchingGuidedLoss(loss_weight=0.5)(student, target).backward()
    assert target.grad is None
    # d/ds 0.5 * (s - t)^2 = s - t where counted, 0 where skipped.
    torch.testing.assert_close(student.grad,
                               torch.tensor([[[[-2.0, 1.0], [0.0, 2.0]]]]))


def test_float16_inputs_do_not_overflow():
    # 4096 squares of 16: 65536 overflows float16 (max 65504).
    student = torch.full((1, 16, 16, 16), 4.0, dtype=torch.float16)
    target = torch.zeros_like(student)
    loss = MatchingGuidedLoss()(student, target)
    assert loss.dtype == torch.float32
    assert loss.item() == 65536.0


def test_shape_mismatch():
    with pytest.raises(ValueError, match='same shape'):
        MatchingGuidedLoss()(torch.zeros(1, 2, 3, 3), torch.zeros(1, 3, 3, 3))


def test_registry_build():
    loss = MODELS.build(dict(type='MatchingGuidedLoss', loss_weight=1e-4))
    assert isinstance(loss, MatchingGuidedLoss)
    assert loss.loss_weight == 1e-4
