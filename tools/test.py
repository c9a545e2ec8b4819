"""Evaluate a checkpoint with the test loop of an MM-style config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]
        [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]

For a distillation algorithm the test loop evaluates the student; the
teacher comes from CHECKPOINT when it holds the teacher's weights, so the
config's teacher_ckpt file is then not needed.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mgd_plugin  # noqa: E402,F401
from mgd_plugin.utils import check_config  # noqa: E402
from mgd_plugin.utils import use_checkpoint_teacher  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and results')
    parser.add_argument(
        '--out', help='dump the metrics to this file (.json, .yaml or .pkl)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    # A distillation checkpoint holds the teacher: its training-time file
    # (teacher_ckpt) is not needed to evaluate the student.
    use_checkpoint_teacher(cfg, args.checkpoint)
    # Only the test data is read: training and matching data may be absent.
    check_config(cfg, sections=('model', 'load_from', 'test_dataloader'))

    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(
        cfg)
    metrics = runner.test()
    if args.out:
        from mmengine.fileio import dump
        dump(dict(metrics), args.out)


if __name__ == '__main__':
    main()
