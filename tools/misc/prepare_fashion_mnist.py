"""Put Fashion-MNIST where MMPretrain's FashionMNIST reads it.

MMPretrain reads the four un-gzipped IDX files from ``data/fashion-mnist``.
This script (standard library only) finds them, in this order:

1. ``--dst`` (``data/fashion-mnist``) already holds them, un-gzipped or
   gzipped (they are then un-gzipped in place);
2. ``--src`` (``/usr/share/datasets/fashion-mnist``) holds them gzipped, as
   the Debian package ``dataset-fashion-mnist`` installs them;
3. running as root on a machine with apt-get, it installs that package
   (``--no-apt`` turns this off) and uses 2.

Otherwise it stops with a message that says how to get the files.

    python tools/misc/prepare_fashion_mnist.py [--src DIR] [--dst DIR]
        [--no-apt]
"""
import argparse
import gzip
import os
import os.path as osp
import shutil
import struct
import subprocess
import sys

DEBIAN_PACKAGE = 'dataset-fashion-mnist'
DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'
DEFAULT_DST = 'data/fashion-mnist'
# File name -> IDX magic number (0x0803: 3-D unsigned bytes, 0x0801: 1-D).
FILES = {
    'train-images-idx3-ubyte': 0x0803,
    'train-labels-idx1-ubyte': 0x0801,
    't10k-images-idx3-ubyte': 0x0803,
    't10k-labels-idx1-ubyte': 0x0801,
}


class DataNotFoundError(RuntimeError):
    """Neither the data folder nor the Debian package has the files."""


def how_to_get(dst: str, src: str) -> str:
    where = f'{src} (gzipped)' if src != DEBIAN_DIR else ''
    return ('Fashion-MNIST was not found. Put the four IDX files '
            f'({", ".join(FILES)}; gzipped or not) in {osp.abspath(dst)}'
            f'{", or in " + where if where else ""}, or install the Debian '
            f'package {DEBIAN_PACKAGE}, which puts them in {DEBIAN_DIR}:\n'
            f'    sudo apt-get update && sudo apt-get install -y '
            f'{DEBIAN_PACKAGE}\n'
            '(run as root on a machine with apt-get, this command installs it '
            'itself). The same files are published as data/fashion/*.gz in '
            'https://github.com/zalandoresearch/fashion-mnist .')


def check_idx(path: str, name: str, opener=open) -> None:
    """Raise ValueError unless ``path`` is an IDX file of ``name``'s kind
    (and, un-gzipped, exactly as long as its header says)."""
    with opener(path, 'rb') as f:
        header = f.read(16)
    magic = struct.unpack('>i', header[:4])[0] if len(header) >= 4 else None
    if magic != FILES[name]:
        raise ValueError(f'{path}: not the IDX file {name} (magic number '
                         f'{magic}, expected {FILES[name]})')
    dims = magic & 0xff
    if opener is open and len(header) >= 4 + 4 * dims:
        shape = struct.unpack(f'>{dims}i', header[4:4 + 4 * dims])
        expected = 4 + 4 * dims + _product(shape)
        if osp.getsize(path) != expected:
            raise ValueError(f'{path}: {osp.getsize(path)} bytes, but its '
                             f'header says {shape} -> {expected} '
                             '(truncated or corrupt)')


def _product(values) -> int:
    result = 1
    for value in values:
        result *= value
    return result


def _complete(folder: str, suffix: str) -> bool:
    return all(osp.isfile(osp.join(folder, name + suffix)) for name in FILES)


def _gunzip_all(src: str, dst: str) -> None:
    os.makedirs(dst, exist_ok=True)
    for name in FILES:
        gz_path = osp.join(src, name + '.gz')
        check_idx(gz_path, name, gzip.open)
        tmp = osp.join(dst, name + '.part')
        # Written under a temporary name: an interrupted copy is not taken
        # for a complete file by the next run.
        with gzip.open(gz_path, 'rb') as fin, open(tmp, 'wb') as fout:
            shutil.copyfileobj(fin, fout)
        os.replace(tmp, osp.join(dst, name))
        check_idx(osp.join(dst, name), name)


def can_apt_install() -> bool:
    return (hasattr(os, 'geteuid') and os.geteuid() == 0
            and shutil.which('apt-get') is not None)


def apt_install(log=print) -> None:
    """Install the Debian package (apt-get update first if it is unknown)."""
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    known = subprocess.run(['apt-cache', 'show', DEBIAN_PACKAGE],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL).returncode == 0
    if not known:
        log('apt-get update')
        subprocess.run(['apt-get', 'update'],
                       check=True,
                       env=env,
                       stdin=subprocess.DEVNULL)
    log(f'apt-get install -y {DEBIAN_PACKAGE}')
    subprocess.run(['apt-get', 'install', '-y', DEBIAN_PACKAGE],
                   check=True,
                   env=env,
                   stdin=subprocess.DEVNULL)


def prepare(dst: str = DEFAULT_DST,
            src: str = DEBIAN_DIR,
            allow_apt: bool = True,
            log=print) -> str:
    """Make ``dst`` hold the four un-gzipped files; return where they came
    from ('dst', 'dst-gz', 'src' or 'apt').

    Raises:
        DataNotFoundError: no source has them (the message says how to get
            them).
        ValueError: a file is there but is not the expected IDX file.
    """
    if _complete(dst, ''):
        for name in FILES:
            check_idx(osp.join(dst, name), name)
        return 'dst'
    if _complete(dst, '.gz'):
        log(f'un-gzipping Fashion-MNIST in {dst}')
        _gunzip_all(dst, dst)
        return 'dst-gz'
    origin = 'src'
    if not _complete(src, '.gz'):
        if not (allow_apt and can_apt_install() and src == DEBIAN_DIR):
            raise DataNotFoundError(how_to_get(dst, src))
        apt_install(log)
        origin = 'apt'
        if not _complete(src, '.gz'):
            raise DataNotFoundError(
                f'{DEBIAN_PACKAGE} is installed but {src} lacks files.\n' +
                how_to_get(dst, src))
    log(f'un-gzipping Fashion-MNIST from {src} into {dst}')
    _gunzip_all(src, dst)
    return origin


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--src', default=DEBIAN_DIR, help='folder with the gzipped IDX files')
    parser.add_argument(
        '--dst',
        default=DEFAULT_DST,
        help='folder MMPretrain reads (the configs\' '
        'data_root)')
    parser.add_argument(
        '--no-apt',
        action='store_true',
        help=f'never install {DEBIAN_PACKAGE}')
    args = parser.parse_args(argv)
    try:
        origin = prepare(args.dst, args.src, allow_apt=not args.no_apt)
    except (DataNotFoundError, ValueError) as error:
        raise SystemExit(str(error))
    print(f'Fashion-MNIST is in {args.dst} (from {origin})')


if __name__ == '__main__':
    sys.exit(main())
