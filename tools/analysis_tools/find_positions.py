"""Print the MGD ``positions=[...]`` block for a teacher/student pair.

Builds both networks from their configs (no weights, nothing downloaded),
runs one forward on a dummy input and prints, per spatial size that both
networks have a stage at, the pre-activation features to record, the
teacher margin BatchNorm, the channels and the loss weights, in the
compact form of ``MatchingGuidedDistiller`` (see ``mgd_plugin.utils.
position_finder`` for the rules).

Usage::

    python tools/analysis_tools/find_positions.py TEACHER_CONFIG \
        [STUDENT_CONFIG] [--input-size H [W]] [--in-channels C] \
        [--num-positions K]

A config is an MMPretrain classifier (or backbone) config, or an MGD /
MMRazor distillation config, whose ``teacher`` or ``architecture`` is
taken. With one distillation config, its teacher and student are used.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
# Importing the plugin registers its models (MobileNetV1, ...).
from mgd_plugin.utils import position_finder  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('teacher', help='teacher (or distillation) config')
    parser.add_argument(
        'student',
        nargs='?',
        help='student config; default: the architecture of TEACHER, which '
        'must then be a distillation config')
    parser.add_argument(
        '--input-size',
        type=int,
        nargs='+',
        default=[224],
        metavar='H',
        help='training input size, H [W] (default 224); also scales the '
        'loss factor')
    parser.add_argument(
        '--in-channels',
        type=int,
        default=None,
        help='image channels (default: the backbones\' in_channels, else 3)')
    parser.add_argument(
        '--num-positions',
        type=int,
        default=None,
        metavar='K',
        help='keep only the K deepest positions (default: all)')
    args = parser.parse_args(argv)
    if len(args.input_size) > 2 or min(args.input_size) < 1:
        parser.error('--input-size takes H or H W, positive integers')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    height, width = (args.input_size * 2)[:2]
    try:
        report = position_finder.find_positions(
            args.teacher,
            args.student, (height, width),
            in_channels=args.in_channels,
            num_positions=args.num_positions)
    except position_finder.PositionError as error:
        print(f'find_positions: {error}', file=sys.stderr)
        return 1
    print(report.format(), end='')
    return 0


if __name__ == '__main__':
    sys.exit(main())
