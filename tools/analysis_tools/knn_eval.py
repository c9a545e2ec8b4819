"""k-NN accuracy of a frozen pretrained backbone (a quick check beside the
linear evaluation).

    python tools/analysis_tools/knn_eval.py LINEAR_CONFIG \
        [--checkpoint PRETRAINING_CKPT] [--prefix backbone.] \
        [--k 20 200] [--temperature 0.07] [--out metrics.json] \
        [--cfg-options k=v ...]

LINEAR_CONFIG is a linear evaluation config (configs/mgd_moco/benchmarks):
its model gives the backbone and neck, its ``model.backbone.init_cfg`` the
pretrained weights (or ``--checkpoint``: the ``--prefix`` keys of that
file, by default a pretraining checkpoint's student backbone). The
training images of ``train_dataloader``, with the test pipeline, are the
labelled bank; the images of ``test_dataloader`` are classified by their
k most similar bank images (cosine similarity of the pooled features,
votes weighted by exp(similarity / temperature)). A smaller bank:
``--cfg-options train_dataloader.dataset.indices=10000``.
"""
import argparse
import copy
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.fileio import dump  # noqa: E402
from mmengine.registry import MODELS, DefaultScope  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mgd_plugin  # noqa: E402,F401
from mgd_plugin.utils import extract_features  # noqa: E402
from mgd_plugin.utils import check_config, knn_accuracy


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='k-NN accuracy of a frozen pretrained backbone')
    parser.add_argument('config', help='a linear evaluation config')
    parser.add_argument(
        '--checkpoint',
        help='pretraining checkpoint to take the backbone from (default: '
        "the config's model.backbone.init_cfg)")
    parser.add_argument(
        '--prefix',
        default='backbone.',
        help="the backbone's key prefix in --checkpoint (default: "
        'backbone., the student of a MoCo or MoCoMGD checkpoint)')
    parser.add_argument('--k', type=int, nargs='+', default=[20, 200])
    parser.add_argument('--temperature', type=float, default=0.07)
    parser.add_argument('--batch-size', type=int, default=None)
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--out', help='dump the accuracies to this file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config')
    return parser.parse_args(argv)


def image_dataset(dataset_cfg: dict) -> dict:
    """The dataset that reads the images (and has the pipeline): the config
    itself, or the one a wrapper such as ``ClassBalancedSubset`` holds."""
    while 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def build_loader(loader_cfg: dict, pipeline, batch_size=None):
    """``loader_cfg`` in order, with ``pipeline`` and every image."""
    cfg = copy.deepcopy(loader_cfg)
    image_dataset(cfg['dataset'])['pipeline'] = copy.deepcopy(pipeline)
    cfg['sampler'] = dict(type='DefaultSampler', shuffle=False)
    cfg.pop('batch_sampler', None)
    cfg['drop_last'] = False
    if batch_size is not None:
        cfg['batch_size'] = batch_size
    return Runner.build_dataloader(cfg, seed=0)


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.checkpoint is not None:
        cfg.model.backbone.init_cfg = dict(
            type='Pretrained', checkpoint=args.checkpoint, prefix=args.prefix)
    if not cfg.model.backbone.get('init_cfg'):
        raise SystemExit('knn_eval: the backbone would have random weights; '
                         'pass --checkpoint or set model.backbone.init_cfg.')
    check_config(
        cfg, sections=('model', 'train_dataloader', 'test_dataloader'))

    scope = cfg.get('default_scope', 'mmpretrain')
    with DefaultScope.overwrite_default_scope(scope):
        model_cfg = copy.deepcopy(cfg.model)
        if 'data_preprocessor' in cfg:
            model_cfg.setdefault('data_preprocessor',
                                 copy.deepcopy(cfg.data_preprocessor))
        model = MODELS.build(model_cfg)
        model.init_weights()
        model.to(args.device)
        pipeline = image_dataset(cfg.test_dataloader.dataset)['pipeline']
        bank_loader = build_loader(cfg.train_dataloader, pipeline,
                                   args.batch_size)
        query_loader = build_loader(cfg.test_dataloader, pipeline,
                                    args.batch_size)
        print(f'bank: {len(bank_loader.dataset)} images')
        bank, bank_labels = extract_features(model, bank_loader)
        print(f'queries: {len(query_loader.dataset)} images')
        queries, query_labels = extract_features(model, query_loader)

    device = torch.device(args.device)
    accuracies = knn_accuracy(
        bank.to(device), bank_labels.to(device), queries.to(device),
        query_labels.to(device), args.k, args.temperature)
    metrics = {f'knn/top1@k{k}': acc for k, acc in accuracies.items()}
    for key, value in metrics.items():
        print(f'{key}: {value:.2f}')
    if args.out:
        dump(metrics, args.out)


if __name__ == '__main__':
    main()
