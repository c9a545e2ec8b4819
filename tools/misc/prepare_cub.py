r"""Lay out CUB-200-2011 as the MGD reference reads it: one folder per class
under ``train/`` and ``valid/`` (the official split).

The official archive (CUB_200_2011.tgz) unpacks to ``images/<class>/*.jpg``
plus ``images.txt`` and ``train_test_split.txt``. This script links (or,
with ``--copy``, copies) every image into ``DST/train/<class>/`` or
``DST/valid/<class>/``, which is what the CUB configs in configs/mgd read:

    python tools/misc/prepare_cub.py --src path/to/CUB_200_2011 \
        --dst data/cub200
"""
import argparse
import os
import os.path as osp
import shutil

LISTS = ('images.txt', 'train_test_split.txt')


def read_list(path):
    """``{image id: value}`` from one of CUB's ``<id> <value>`` files."""
    with open(path) as f:
        return dict(
            line.split(maxsplit=1) for line in f.read().splitlines()
            if line.strip())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--src', required=True, help='the unpacked CUB_200_2011 folder')
    parser.add_argument('--dst', default='data/cub200')
    parser.add_argument(
        '--copy',
        action='store_true',
        help='copy the images instead of linking them')
    args = parser.parse_args(argv)
    missing = [
        name for name in LISTS + ('images', )
        if not osp.exists(osp.join(args.src, name))
    ]
    if missing:
        raise SystemExit(f'{args.src} lacks {missing}: pass the folder the '
                         'official CUB_200_2011.tgz unpacks to')
    images = read_list(osp.join(args.src, 'images.txt'))
    is_train = read_list(osp.join(args.src, 'train_test_split.txt'))
    if images.keys() != is_train.keys():
        raise SystemExit('images.txt and train_test_split.txt list different '
                         'image ids')
    counts = {'train': 0, 'valid': 0}
    for image_id, relpath in images.items():
        split = 'train' if is_train[image_id].strip() == '1' else 'valid'
        src = osp.abspath(osp.join(args.src, 'images', relpath.strip()))
        dst = osp.join(args.dst, split, relpath.strip())
        os.makedirs(osp.dirname(dst), exist_ok=True)
        if osp.lexists(dst):
            os.remove(dst)
        if args.copy:
            shutil.copyfile(src, dst)
        else:
            os.symlink(src, dst)
        counts[split] += 1
    print(f'{counts["train"]} training and {counts["valid"]} validation '
          f'images in {args.dst}/train and {args.dst}/valid')


if __name__ == '__main__':
    main()
