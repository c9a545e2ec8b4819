"""Every error the README and docstrings promise, raised where promised,
and the mixed-precision guard of the matching costs."""

import pytest
import torch

from mgd_plugin.engine.hooks import MatchingUpdateHook
from test_matching_guided_distillation import batch, build, model_cfg


def explicit_cfg():
    """The tiny MGD model in MMRazor's explicit ConfigurableDistiller form."""
    from mgd_plugin.models.distillers.matching_guided_distiller import \
        expand_positions
    cfg = model_cfg()
    explicit = expand_positions(
        cfg.distiller.pop('positions'), cfg.distiller.pop('reducer'),
        dict(type='NormConnector', norm_cfg=dict(type='BN')))
    cfg.distiller.update(explicit)
    return cfg


def test_no_reducer_loss_at_all():
    cfg = explicit_cfg()
    for name in list(cfg.distiller.loss_forward_mappings):
        mapping = cfg.distiller.loss_forward_mappings[name]
        mapping.t_feature.pop('connector')  # a plain feature loss
    cfg.distiller.margin_bns = {}
    with pytest.raises(
            ValueError,
            match='found no loss whose teacher input '
            'goes through a channel reducer'):
        build(cfg)


def test_a_reducer_loss_needs_exactly_one_student_input():
    cfg = explicit_cfg()
    mapping = cfg.distiller.loss_forward_mappings.loss_mgd1
    # Both inputs from the teacher, one through the reducer.
    mapping.s_feature = dict(
        from_student=False, recorder='mgd1_t', record_idx=2, data_idx=0)
    with pytest.raises(
            ValueError,
            match="MGD loss 'loss_mgd1' must map "
            'exactly one student input and one teacher input'):
        build(cfg)


def test_explicit_form_reducer_without_margin_bn():
    cfg = explicit_cfg()
    del cfg.distiller.margin_bns['mgd2_reducer']
    with pytest.raises(
            ValueError,
            match="margin_bns has no teacher "
            "BatchNorm for reducer 'mgd2_reducer'"):
        build(cfg)


def test_explicit_form_margin_bn_of_no_reducer():
    cfg = explicit_cfg()
    cfg.distiller.margin_bns['mgd9_reducer'] = 'backbone.layer1.2.bn3'
    with pytest.raises(
            ValueError,
            match=r"margin_bns names connectors that "
            r"are not reducers of any MGD loss: \['mgd9_reducer'\]"):
        build(cfg)


def test_wrong_distiller_type():
    cfg = model_cfg()
    cfg.distiller = dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            fc=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(
            fc=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(loss_kd=dict(type='KLDivergence', tau=1.5)),
        loss_forward_mappings=dict(
            loss_kd=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc'))))
    with pytest.raises(
            TypeError,
            match='MatchingGuidedDistillation needs a '
            'MatchingGuidedDistiller, got ConfigurableDistiller'):
        build(cfg)


def test_channel_counts_differ_from_the_recorded_features():
    cfg = model_cfg()
    # The teacher's first ReLU call of the block: a quarter of the channels.
    cfg.distiller.positions[3].teacher.record_idx = 0
    algo = build(cfg)
    with pytest.raises(
            ValueError,
            match="position 'mgd3_reducer': the "
            'reducer expects 32 student and 128 teacher channels, '
            'the recorders give 32 and 32'):
        algo.matching_pass([batch(2)], show_progress=False)


def test_features_that_are_not_4d():
    cfg = model_cfg()
    # The logits: (N, classes).
    cfg.distiller.positions[3].teacher.update(
        type='ModuleOutputs', source='head.fc', record_idx=0)
    algo = build(cfg)
    with pytest.raises(
            ValueError,
            match="position 'mgd3_reducer': recorded "
            r'features must be \(N, C, H, W\)'):
        algo.matching_pass([batch(2)], show_progress=False)


def test_hook_on_a_model_without_channel_matching():
    from mmengine.model import BaseModel

    class Classifier(BaseModel):

        def forward(self, inputs, data_samples=None, mode='tensor'):
            return inputs

    class Runner:
        model = Classifier()

    hook = MatchingUpdateHook(dataloader=dict(dataset=dict(type='X')))
    with pytest.raises(
            TypeError,
            match='MatchingUpdateHook needs a model '
            'with a channel matching'):
        hook.before_train(Runner())


def test_hook_needs_a_dataloader_config_dict():
    with pytest.raises(TypeError, match='must be a dataloader config dict'):
        MatchingUpdateHook(dataloader=[1, 2, 3])


def test_matching_costs_are_float32_under_autocast():
    # The guard around the cost einsum: the same features give the same
    # costs (and so the same matching) with or without autocast. In
    # bfloat16 the similarities would be rounded to ~3 digits.
    algo = build()
    algo.eval()
    distiller = algo.distiller
    inputs = algo.data_preprocessor(batch(8), False)['inputs']
    with torch.no_grad(), distiller.teacher_recorders, \
            distiller.student_recorders:
        algo.matching_forward(inputs)
        distiller.reset_matching_costs()
        distiller.accumulate_matching_costs(8)
        full = distiller.matching_costs()
        distiller.reset_matching_costs()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            distiller.accumulate_matching_costs(8)
        mixed = distiller.matching_costs()
    for name, cost in full.items():
        assert mixed[name].dtype == torch.float64
        torch.testing.assert_close(mixed[name], cost, rtol=0, atol=1e-9)
