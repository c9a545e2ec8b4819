"""Tests of the MGD channel reducers against element-by-element versions."""
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmrazor.registry import MODELS

import mgd_plugin  # noqa: F401  (compat layer before mmrazor.models)
from mgd_plugin.models.architectures import (AbsMaxPoolReducer,
                                             BaseChannelReducer,
                                             MaxPoolReducer, RandomDropReducer,
                                             SparseMatchReducer)

GROUPED_REDUCERS = [AbsMaxPoolReducer, RandomDropReducer, MaxPoolReducer]
ALL_REDUCERS = GROUPED_REDUCERS + [SparseMatchReducer]


def balanced_assignment(num_s, num_t, seed):
    """A random balanced assignment: a shuffled round robin."""
    rng = np.random.default_rng(seed)
    return rng.permutation(np.arange(num_t) % num_s)


def sparse_assignment(num_s, num_t, seed):
    rng = np.random.default_rng(seed)
    return rng.permutation(num_t)[:num_s]


def assignment_for(cls, num_s, num_t, seed=0):
    if cls is SparseMatchReducer:
        return sparse_assignment(num_s, num_t, seed)
    return balanced_assignment(num_s, num_t, seed)


def groups_of(cls, assignment, num_s):
    """The member lists, written out the obvious way."""
    if cls is SparseMatchReducer:
        return [[int(assignment[i])] for i in range(num_s)]
    return [[j for j in range(len(assignment)) if assignment[j] == i]
            for i in range(num_s)]


def build(cls, num_s, num_t, seed=0, margin=None):
    reducer = cls(student_channels=num_s, teacher_channels=num_t)
    assignment = assignment_for(cls, num_s, num_t, seed)
    reducer.update_matching(assignment)
    if margin is not None:
        reducer.set_margin(margin)
    return reducer, groups_of(cls, assignment, num_s)


def reference_target(cls, feature, margin, groups):
    """Element-by-element target of the deterministic reducers."""
    num, _, height, width = feature.shape
    out = torch.empty(num, len(groups), height, width, dtype=feature.dtype)
    for i, members in enumerate(groups):
        member_margins = [float(margin[j]) for j in members]
        if cls is AbsMaxPoolReducer:
            group_margin = sum(member_margins) / len(members)
        elif cls is MaxPoolReducer:
            group_margin = max(member_margins)
        else:
            group_margin = member_margins[0]
        for n in range(num):
            for h in range(height):
                for w in range(width):
                    values = [float(feature[n, j, h, w]) for j in members]
                    if cls is AbsMaxPoolReducer:
                        best = values[0]
                        for value in values[1:]:
                            if abs(value) > abs(best):
                                best = value
                    elif cls is MaxPoolReducer:
                        best = max(values)
                    else:
                        best = values[0]
                    out[n, i, h, w] = max(best, group_margin)
    return out


CASES = [(2, 6, 0), (3, 8, 1), (3, 8, 2), (4, 4, 3), (1, 5, 4)]


@pytest.mark.parametrize(
    'cls', [AbsMaxPoolReducer, MaxPoolReducer, SparseMatchReducer])
@pytest.mark.parametrize('num_s,num_t,seed', CASES)
def test_matches_elementwise_reference(cls, num_s, num_t, seed):
    gen = torch.Generator().manual_seed(seed)
    feature = torch.randn(2, num_t, 3, 2, generator=gen)
    # Margins around the feature's range, so both sides of the clamp occur.
    margin = torch.randn(num_t, generator=gen) * 0.5 - 0.3
    reducer, groups = build(cls, num_s, num_t, seed, margin)
    out = reducer(feature)
    assert out.shape == (2, num_s, 3, 2)
    torch.testing.assert_close(out,
                               reference_target(cls, feature, margin, groups))


def test_group_layout_of_non_divisible_assignment():
    reducer = AbsMaxPoolReducer(student_channels=3, teacher_channels=8)
    reducer.update_matching(np.array([2, 0, 1, 2, 0, 1, 0, 2]))
    # Members ascending, the group of two padded with its first member.
    assert reducer.group_index.tolist() == [[1, 4, 6], [2, 5, 2], [0, 3, 7]]
    assert reducer.group_size.tolist() == [3, 2, 3]
    assert reducer.assignment.tolist() == [2, 0, 1, 2, 0, 1, 0, 2]


def test_abs_max_keeps_sign_and_ignores_padding_in_margin():
    reducer = AbsMaxPoolReducer(student_channels=2, teacher_channels=3)
    reducer.update_matching(torch.tensor([0, 0, 1]))
    reducer.set_margin(torch.tensor([-1.0, -3.0, -5.0]))
    feature = torch.tensor([-4.0, 2.0, -7.0]).view(1, 3, 1, 1)
    out = reducer(feature).flatten().tolist()
    # Group 0 = {0, 1}: -4 wins by magnitude (above margin mean -2);
    # group 1 = {2} padded with itself: -7 clamped to its own margin -5.
    assert out == [-2.0, -5.0]


@pytest.mark.parametrize('num_s,num_t,seed', [(2, 6, 0), (3, 8, 1)])
def test_random_drop_picks_group_members(num_s, num_t, seed):
    reducer, groups = build(RandomDropReducer, num_s, num_t, seed)
    # Distinct values everywhere, and no margin (-inf): the output is the
    # drawn member itself.
    feature = torch.randn(4, num_t, 5, 5)
    seen = [set() for _ in range(num_s)]
    out = reducer(feature)
    for n in range(4):
        for i in range(num_s):
            for h in range(5):
                for w in range(5):
                    value = out[n, i, h, w]
                    hits = [
                        j for j in groups[i] if feature[n, j, h, w] == value
                    ]
                    assert len(hits) == 1
                    seen[i].add(hits[0])
    # 100 draws per channel: every member (at most 3) shows up.
    assert all(seen[i] == set(groups[i]) for i in range(num_s))


def test_random_drop_redraws_and_is_reproducible():
    reducer, _ = build(RandomDropReducer, 3, 8, 1)
    feature = torch.randn(2, 8, 4, 4)
    torch.manual_seed(123)
    first = reducer(feature)
    second = reducer(feature)
    assert not torch.equal(first, second)
    torch.manual_seed(123)
    torch.testing.assert_close(reducer(feature), first, rtol=0, atol=0)


def test_random_drop_draws_uniformly():
    reducer = RandomDropReducer(student_channels=1, teacher_channels=3)
    reducer.update_matching(np.zeros(3, dtype=np.int64))
    feature = torch.tensor([0.0, 1.0, 2.0]).view(1, 3, 1,
                                                 1).expand(1, 3, 60, 50)
    counts = torch.bincount(reducer(feature).flatten().long(), minlength=3)
    # 3000 draws, expected 1000 each; 5 standard deviations is about 130.
    assert ((counts - 1000).abs() < 130).all(), counts


@pytest.mark.parametrize('num_s,num_t,seed', [(2, 6, 0), (3, 8, 1)])
def test_random_drop_margin_is_a_group_members_margin(num_s, num_t, seed):
    margin = torch.arange(num_t, dtype=torch.float32) + 10
    reducer, groups = build(RandomDropReducer, num_s, num_t, seed, margin)
    # A feature below every margin: the target is the drawn margin.
    feature = torch.full((2, num_t, 3, 3), -100.0)
    seen = [set() for _ in range(num_s)]
    for _ in range(40):
        out = reducer(feature)
        for i in range(num_s):
            # One margin per student channel, not per position.
            assert (out[:, i] == out[0, i, 0, 0]).all()
            member = int(out[0, i, 0, 0]) - 10
            assert member in groups[i]
            seen[i].add(member)
    # Redrawn across forwards: every member's margin shows up.
    assert all(seen[i] == set(groups[i]) for i in range(num_s))


@pytest.mark.parametrize('cls', ALL_REDUCERS)
def test_no_gradient_into_teacher(cls):
    reducer, _ = build(cls, 3, 8, 0, torch.zeros(8))
    feature = torch.randn(2, 8, 2, 2, requires_grad=True)
    out = reducer(feature)
    assert not out.requires_grad
    assert out.grad_fn is None


@pytest.mark.parametrize('cls', ALL_REDUCERS)
def test_float16_input(cls):
    margin = torch.randn(8)
    reducer, groups = build(cls, 3, 8, 0, margin)
    feature = torch.randn(2, 8, 3, 3).half()
    torch.manual_seed(0)
    out = reducer(feature)
    assert out.dtype == torch.float16
    if cls is not RandomDropReducer:
        # The margin is rounded to float16 after the reduction in float32.
        expected = reference_target(cls, feature.float(), margin, groups)
        torch.testing.assert_close(
            out.float(), expected.half().float(), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize('cls', ALL_REDUCERS)
def test_module_in_float64(cls):
    reducer, _ = build(cls, 2, 6, 0, torch.randn(6))
    reducer.double()
    out = reducer(torch.randn(1, 6, 2, 2, dtype=torch.float64))
    assert out.dtype == torch.float64


@pytest.mark.parametrize('cls', ALL_REDUCERS)
def test_state_dict_round_trip_into_fresh_reducer(cls):
    reducer, _ = build(cls, 3, 8, 4, torch.randn(8))
    state = reducer.state_dict()
    assert set(state) == {
        'assignment', 'group_index', 'group_size', 'margin',
        'matching_installed'
    }
    fresh = cls(student_channels=3, teacher_channels=8)
    fresh.load_state_dict(state)
    feature = torch.randn(2, 8, 3, 3)
    torch.manual_seed(5)
    expected = reducer(feature)
    torch.manual_seed(5)
    torch.testing.assert_close(fresh(feature), expected, rtol=0, atol=0)
    # A later matching replaces the loaded one.
    fresh.update_matching(assignment_for(cls, 3, 8, seed=9))
    assert not torch.equal(fresh.group_index, reducer.group_index)


def test_state_dict_without_matching_stays_unmatched():
    fresh = AbsMaxPoolReducer(student_channels=2, teacher_channels=6)
    fresh.load_state_dict(
        AbsMaxPoolReducer(student_channels=2, teacher_channels=6).state_dict())
    with pytest.raises(RuntimeError, match='MatchingUpdateHook'):
        fresh(torch.randn(1, 6, 2, 2))


def test_update_matching_replaces_groups():
    reducer = MaxPoolReducer(student_channels=2, teacher_channels=4)
    feature = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 4, 1, 1)
    reducer.update_matching([0, 0, 1, 1])
    assert reducer(feature).flatten().tolist() == [2.0, 4.0]
    reducer.update_matching(torch.tensor([1, 0, 0, 1], dtype=torch.int32))
    assert reducer(feature).flatten().tolist() == [3.0, 4.0]


@pytest.mark.parametrize('cls', ALL_REDUCERS)
def test_forward_before_matching_raises(cls):
    reducer = cls(student_channels=2, teacher_channels=6)
    with pytest.raises(RuntimeError, match='matching pass'):
        reducer(torch.randn(1, 6, 2, 2))


@pytest.mark.parametrize('cls', ALL_REDUCERS)
def test_wrong_input_channels(cls):
    reducer, _ = build(cls, 2, 6)
    with pytest.raises(ValueError, match=r'\(N, 6, H, W\)'):
        reducer(torch.randn(1, 5, 2, 2))
    with pytest.raises(ValueError, match=r'\(N, 6, H, W\)'):
        reducer(torch.randn(6, 2, 2))


@pytest.mark.parametrize('cls', ALL_REDUCERS)
@pytest.mark.parametrize('num_s,num_t,message', [
    (4, 3, 'must not exceed'),
    (0, 3, 'student_channels must be a positive int'),
    (2, -1, 'teacher_channels must be a positive int'),
    (2.0, 4, 'student_channels must be a positive int'),
    (True, 4, 'student_channels must be a positive int'),
])
def test_invalid_channels(cls, num_s, num_t, message):
    with pytest.raises(ValueError, match=message):
        cls(student_channels=num_s, teacher_channels=num_t)


def test_numpy_channel_counts_are_accepted():
    reducer = AbsMaxPoolReducer(
        student_channels=np.int64(2), teacher_channels=np.int32(4))
    assert reducer.group_index.shape == (2, 2)


@pytest.mark.parametrize('cls', ALL_REDUCERS)
def test_invalid_margin(cls):
    reducer = cls(student_channels=2, teacher_channels=6)
    for bad in (torch.zeros(5), torch.zeros(6, 1), torch.zeros(2)):
        with pytest.raises(ValueError, match=r'shape \(6,\)'):
            reducer.set_margin(bad)


@pytest.mark.parametrize('cls', GROUPED_REDUCERS)
@pytest.mark.parametrize('assignment,message', [
    ([0, 1, 0, 1, 0], r'shape \(6,\)'),
    ([[0, 1, 0], [1, 0, 1]], r'shape \(6,\)'),
    ([0, 1, 0, 1, 0, 2], r'in \[0, 2\)'),
    ([0, 1, 0, 1, 0, -1], r'in \[0, 2\)'),
    ([0, 0, 0, 0, 1, 1], '3 or 3 teacher channels'),
    (np.array([0., 1., 0., 1., 0., 1.]), 'integers'),
    (np.array([False, True] * 3), 'integers'),
])
def test_invalid_balanced_assignment(cls, assignment, message):
    reducer = cls(student_channels=2, teacher_channels=6)
    with pytest.raises(ValueError, match=message):
        reducer.update_matching(assignment)
    assert not bool(reducer.matching_installed)


def test_unbalanced_non_divisible_assignment():
    reducer = AbsMaxPoolReducer(student_channels=3, teacher_channels=8)
    with pytest.raises(ValueError, match='2 or 3 teacher channels'):
        reducer.update_matching([0, 0, 0, 0, 1, 1, 2, 2])


@pytest.mark.parametrize('assignment,message', [
    ([0, 1, 2], r'shape \(2,\)'),
    ([0, 6], r'in \[0, 6\)'),
    ([3, 3], 'distinct'),
])
def test_invalid_sparse_assignment(assignment, message):
    reducer = SparseMatchReducer(student_channels=2, teacher_channels=6)
    with pytest.raises(ValueError, match=message):
        reducer.update_matching(assignment)


def test_sparse_state_layout():
    reducer = SparseMatchReducer(student_channels=2, teacher_channels=6)
    reducer.update_matching(np.array([4, 1]))
    assert reducer.assignment.tolist() == [4, 1]
    assert reducer.group_index.tolist() == [[4], [1]]
    assert reducer.group_size.tolist() == [1, 1]


def test_margin_defaults_to_no_lower_bound():
    reducer, _ = build(MaxPoolReducer, 2, 6)
    feature = torch.full((1, 6, 2, 2), -1e4)
    assert (reducer(feature) == -1e4).all()


@pytest.mark.parametrize('name', [
    'AbsMaxPoolReducer', 'RandomDropReducer', 'MaxPoolReducer',
    'SparseMatchReducer'
])
def test_registry_build(name):
    # In MMRazor's scope, whatever scope earlier tests left current.
    with DefaultScope.overwrite_default_scope('mmrazor'):
        reducer = MODELS.build(
            dict(type=name, student_channels=2, teacher_channels=6))
    assert isinstance(reducer, BaseChannelReducer)
    assert type(reducer).__name__ == name


def test_base_reducer_is_abstract():
    with pytest.raises(TypeError):
        BaseChannelReducer(student_channels=2, teacher_channels=6)


# --------------------------------------------------------------------------
# Found by mutation testing (tools/misc/run_mutation_tests.sh).
# --------------------------------------------------------------------------
@pytest.mark.parametrize('cls', ALL_REDUCERS)
def test_buffer_dtypes_and_initial_values(cls):
    reducer = cls(student_channels=2, teacher_channels=6)
    assert reducer.assignment.dtype == torch.int64
    assert reducer.group_index.dtype == torch.int64
    assert reducer.group_size.dtype == torch.int64
    assert reducer.matching_installed.dtype == torch.bool
    assert reducer.margin.dtype == torch.float32
    assert torch.equal(reducer.margin, torch.full((6, ), -float('inf')))
    reducer.update_matching(assignment_for(cls, 2, 6))
    assert reducer.assignment.dtype == torch.int64
    assert reducer.matching_installed.dtype == torch.bool


def test_a_student_without_teachers_is_refused():
    reducer = AbsMaxPoolReducer(student_channels=3, teacher_channels=4)
    with pytest.raises(ValueError) as info:
        reducer.update_matching([0, 0, 1, 1])
    assert str(info.value) == (
        'The assignment must give every student channel 1 or 2 teacher '
        'channels (T=4, S=3), got group sizes [2, 2, 0].')


def test_error_messages_in_full():
    reducer = MaxPoolReducer(student_channels=2, teacher_channels=6)
    with pytest.raises(RuntimeError) as info:
        reducer(torch.randn(1, 6, 2, 2))
    assert str(info.value) == (
        'MaxPoolReducer has no channel matching yet: a matching pass '
        '(MatchingUpdateHook) must run first and call update_matching().')
    reducer.update_matching([0, 1, 0, 1, 0, 1])
    with pytest.raises(ValueError) as info:
        reducer(torch.randn(1, 5, 2, 2))
    assert str(info.value) == (
        'MaxPoolReducer expects a teacher feature of shape (N, 6, H, W), '
        'got (1, 5, 2, 2).')
    with pytest.raises(ValueError) as info:
        reducer.update_matching('not numbers')
    assert str(
        info.value) == ('The assignment must be an integer array, got str.')
    with pytest.raises(ValueError) as info:
        reducer.update_matching([0, 1])
    assert str(info.value) == 'The assignment must have shape (6,), got (2,).'
    with pytest.raises(ValueError) as info:
        RandomDropReducer(student_channels=4, teacher_channels=3)
    assert str(info.value) == (
        'RandomDropReducer reduces teacher channels to fewer student '
        'channels, so student_channels (4) must not exceed teacher_channels '
        '(3).')
    sparse = SparseMatchReducer(student_channels=2, teacher_channels=6)
    with pytest.raises(ValueError) as info:
        sparse.update_matching([3, 3])
    assert str(info.value) == (
        'The sparse assignment must match every student channel to a '
        'distinct teacher channel; some teacher channels repeat.')


@pytest.mark.parametrize('cls', ALL_REDUCERS)
def test_loading_reports_missing_unexpected_and_misshapen_keys(cls):
    reducer, _ = build(cls, 2, 6)
    state = {f'reducer.{k}': v for k, v in reducer.state_dict().items()}
    holder = torch.nn.Module()
    holder.reducer = cls(student_channels=2, teacher_channels=6)

    missing = dict(state)
    del missing['reducer.group_size']
    result = holder.load_state_dict(missing, strict=False)
    assert result.missing_keys == ['reducer.group_size']

    unexpected = dict(state, **{'reducer.extra': torch.zeros(1)})
    with pytest.raises(RuntimeError, match='"reducer.extra"'):
        holder.load_state_dict(unexpected)

    misshapen = dict(state, **{'reducer.margin': torch.zeros(5)})
    with pytest.raises(RuntimeError, match='size mismatch for reducer.margin'):
        holder.load_state_dict(misshapen)


@pytest.mark.parametrize(
    'cls', [AbsMaxPoolReducer, MaxPoolReducer, SparseMatchReducer])
def test_non_contiguous_feature_gives_the_same_target(cls):
    reducer, _ = build(cls, 3, 8, margin=torch.randn(8))
    feature = torch.randn(2, 8, 4, 5)
    channels_last = feature.contiguous(memory_format=torch.channels_last)
    assert not channels_last.is_contiguous()
    assert torch.equal(reducer(channels_last), reducer(feature))


@pytest.mark.parametrize('cls', ALL_REDUCERS)
def test_init_cfg_is_kept(cls):
    init_cfg = dict(type='Constant', val=0)
    reducer = cls(student_channels=2, teacher_channels=6, init_cfg=init_cfg)
    assert reducer.init_cfg == init_cfg
