"""Export the student of an MMRazor distillation checkpoint as a plain
MMPretrain checkpoint, with a config of the student beside it.

    python tools/model_converters/export_student.py CHECKPOINT OUT \\
        [--config DISTILLATION_CONFIG]

OUT (e.g. student.pth) gets the student's weights; OUT with the suffix .py
(student.py) gets its config. Then, with MMPretrain alone:

    mmpretrain.get_model('student.py', pretrained='student.pth')
    python tools/test.py student.py student.pth
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
import mgd_plugin  # noqa: E402,F401
from mgd_plugin.utils import export_student  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export the student of a distillation checkpoint')
    parser.add_argument('checkpoint', help='distillation checkpoint')
    parser.add_argument('out', help='student checkpoint to write')
    parser.add_argument(
        '--config',
        help='the distillation config (default: the one stored in the '
        'checkpoint)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        checkpoint, config = export_student(args.checkpoint, args.out,
                                            args.config)
    except ValueError as error:
        raise SystemExit(f'export_student: {error}')
    print(f'student checkpoint: {checkpoint}\nstudent config: {config}')


if __name__ == '__main__':
    main()
