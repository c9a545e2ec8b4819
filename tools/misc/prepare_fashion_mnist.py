"""Un-gzip Fashion-MNIST into the folder MMPretrain's FashionMNIST reads.

Debian's `dataset-fashion-mnist` package installs the four IDX files,
gzipped, in /usr/share/datasets/fashion-mnist:

    apt-get install dataset-fashion-mnist
    python tools/misc/prepare_fashion_mnist.py [--src DIR] [--dst data/fashion-mnist]
"""
import argparse
import gzip
import os
import os.path as osp
import shutil

FILES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte',
         't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--src', default='/usr/share/datasets/fashion-mnist')
    parser.add_argument('--dst', default='data/fashion-mnist')
    args = parser.parse_args(argv)
    missing = [f for f in FILES if not osp.isfile(osp.join(args.src, f + '.gz'))]
    if missing:
        raise SystemExit(f'{args.src} lacks {missing}; install the Debian '
                         'package dataset-fashion-mnist or pass --src')
    os.makedirs(args.dst, exist_ok=True)
    for name in FILES:
        with gzip.open(osp.join(args.src, name + '.gz'), 'rb') as src, \
                open(osp.join(args.dst, name), 'wb') as dst:
            shutil.copyfileobj(src, dst)
    print(f'wrote {len(FILES)} files to {args.dst}')


if __name__ == '__main__':
    main()
