"""tools/misc/prepare_cub.py turns the official CUB-200-2011 layout into the
reference's train/valid class folders, which the CUB recipes read with the
same images and labels as MMPretrain's own CUB dataset."""
import os.path as osp
import sys

from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS

from conftest import REPO_ROOT, write_image_folder

sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'misc'))
import prepare_cub  # noqa: E402

CLASSES = ('001.Black_footed_Albatross', '002.Laysan_Albatross',
           '003.Sooty_Albatross')


def write_official_cub(root):
    write_image_folder(
        str(root / 'images'), num_classes=len(CLASSES), per_class=3)
    for index, name in enumerate(CLASSES):
        (root / 'images' / f'class_{index}').rename(root / 'images' / name)
    files = sorted(
        p.relative_to(root / 'images').as_posix()
        for p in (root / 'images').glob('*/*.png'))
    # Image ids in a shuffled order, so that neither split is a prefix.
    ids = {path: 1 + (7 * k) % len(files) for k, path in enumerate(files)}
    (root / 'images.txt').write_text(''.join(f'{ids[p]} {p}\n' for p in files))
    (root / 'image_class_labels.txt').write_text(''.join(
        f'{ids[p]} {1 + CLASSES.index(p.split("/")[0])}\n' for p in files))
    (root / 'train_test_split.txt').write_text(''.join(
        f'{ids[p]} {ids[p] % 2}\n' for p in files))


def samples(dataset):
    return sorted((osp.relpath(osp.realpath(d['img_path'])), d['gt_label'])
                  for d in dataset.load_data_list())


def test_recipe_folders_hold_the_official_split(tmp_path):
    src, dst = tmp_path / 'CUB_200_2011', tmp_path / 'cub200'
    src.mkdir()
    write_official_cub(src)
    prepare_cub.main(['--src', str(src), '--dst', str(dst)])

    cfg = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', '_base_', 'datasets',
                 'cub-folders_bs16.py'))
    init_default_scope('mmpretrain')
    for loader, split in (('train_dataloader', 'train'), ('val_dataloader',
                                                          'test')):
        ours = DATASETS.build(
            dict(cfg[loader].dataset, data_root=str(dst), pipeline=[]))
        official = DATASETS.build(
            dict(type='CUB', data_root=str(src), split=split, pipeline=[]))
        assert len(official) > 0
        assert samples(ours) == samples(official), loader
