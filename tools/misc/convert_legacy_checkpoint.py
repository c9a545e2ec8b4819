"""Rewrite a checkpoint written by MMEngine without mgd_plugin so that safe
(``weights_only``) loading accepts it.

Such checkpoints pickle ``builtins.getattr`` (through MMEngine's
``HistoryBuffer``), which torch >= 2.6 refuses to load safely. This tool
reads the file with ``weights_only=False``, which runs whatever code the file
names: use it only on checkpoints you trust.

    python tools/misc/convert_legacy_checkpoint.py IN.pth OUT.pth
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
import torch  # noqa: E402

# mgd_plugin installs the safe HistoryBuffer pickling.
import mgd_plugin  # noqa: E402,F401


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='trusted legacy checkpoint')
    parser.add_argument('dst', help='where to write the converted checkpoint')
    args = parser.parse_args(argv)
    if osp.abspath(args.src) == osp.abspath(args.dst):
        parser.error('write the converted checkpoint to a new file')

    checkpoint = torch.load(args.src, map_location='cpu', weights_only=False)
    torch.save(checkpoint, args.dst)
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(args.dst)
    unsafe = [
        name for name in unsafe if name not in {
            f'{g.__module__}.{g.__qualname__}'
            for g in torch.serialization.get_safe_globals()
            if hasattr(g, '__qualname__')
        }
    ]
    if unsafe:
        raise SystemExit(f'{args.dst} still needs unsafe globals {unsafe}; '
                         'it was written but cannot be loaded safely.')
    print(f'wrote {args.dst}: loads with weights_only=True')


if __name__ == '__main__':
    main()
