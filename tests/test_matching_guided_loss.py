"""Tests of MatchingGuidedLoss against hand-computed values."""
import pytest
import torch
from mmengine.registry import DefaultScope
from mmrazor.registry import MODELS

import mgd_plugin  # noqa: F401  (compat layer before mmrazor.models)
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
    # In MMRazor's scope, as MMRazor configs build their losses.
    with DefaultScope.overwrite_default_scope('mmrazor'):
        loss = MODELS.build(dict(type='MatchingGuidedLoss', loss_weight=1e-4))
    assert isinstance(loss, MatchingGuidedLoss)
    assert loss.loss_weight == 1e-4


def test_zero_target_counts_only_a_student_above_it():
    # t == 0 is not "t > 0": a student below a zero target is free, one
    # above it is pulled down. (Counting t >= 0 would charge 1 + 4 here.)
    student = torch.tensor([[[[-1.0, -2.0], [0.5, 0.0]]]])
    target = torch.zeros_like(student)
    assert MatchingGuidedLoss()(student, target).item() == pytest.approx(0.25)


@pytest.mark.parametrize('where', ['student', 'target'])
def test_nan_in_either_feature_gives_nan(where):
    # Including at a position that would otherwise be skipped (s <= t <= 0):
    # a NaN must not hide behind the mask.
    student = torch.tensor([[[[-3.0, 1.0]]]])
    target = torch.tensor([[[[-0.5, 1.0]]]])
    (student if where == 'student' else target)[0, 0, 0, 0] = float('nan')
    student.requires_grad_()
    loss = MatchingGuidedLoss()(student, target)
    assert torch.isnan(loss)
    loss.backward()
    assert torch.isnan(student.grad[0, 0, 0, 0])


@pytest.mark.parametrize(
    'student_value, target_value',
    [
        (0.0, float('inf')),  # t > 0: counted, infinitely far
        (float('inf'), 1.0),  # s > t: counted
        (1.0, -float('inf')),  # s > t, the default margin of no lower bound
    ])
def test_an_infinite_counted_difference_gives_inf_not_nan(
        student_value, target_value):
    student = torch.tensor([[[[student_value, 1.0]]]])
    target = torch.tensor([[[[target_value, 0.0]]]])
    loss = MatchingGuidedLoss()(student, target)
    assert loss.item() == float('inf')


def test_an_infinitely_low_skipped_student_costs_nothing():
    # s = -inf below a non-positive target: skipped, the loss stays finite.
    student = torch.tensor([[[[-float('inf'), 2.0]]]])
    target = torch.tensor([[[[-1.0, 1.0]]]])
    assert MatchingGuidedLoss()(student, target).item() == pytest.approx(1.0)


def test_a_positive_target_below_one_counts_a_lower_student():
    # t > 0 counts wherever s is: (0.2 - 0.5)^2 + (0.7 - 0.5)^2.
    student = torch.tensor([[[[0.2, 0.7]]]])
    target = torch.tensor([[[[0.5, 0.5]]]])
    assert MatchingGuidedLoss()(student,
                                target).item() == pytest.approx(0.09 + 0.04)
