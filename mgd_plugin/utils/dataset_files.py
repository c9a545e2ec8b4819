"""The files an MMPretrain dataset config will read, checked on disk.

MMPretrain finds out that a data root is incomplete only when it builds the
dataset, after the model (an ImageNet ``val`` folder even after the first
training epoch), and some of its messages do not say where it looked.
:func:`dataset_file_problems` reads one dataset config the way the dataset
class would and lists what is missing, with the paths it looked at.
"""
import os
import os.path as osp
from typing import List, Optional, Sequence

# MMPretrain's CUB reads these from its data_root (and images from
# ``images/``); the names are fixed in its __init__.
CUB_FILES = ('images.txt', 'image_class_labels.txt', 'train_test_split.txt')
CUB_IMAGE_DIR = 'images'


def dataset_class(type_name):
    """The MMPretrain dataset class registered as ``type_name``, or None."""
    if not isinstance(type_name, str):
        return type_name if isinstance(type_name, type) else None
    try:
        from mmpretrain.registry import DATASETS
        return DATASETS.get(type_name)
    except Exception:  # not an MMPretrain type: nothing known to check
        return None


def downloads_itself(node: dict) -> bool:
    """Whether the dataset fetches missing files itself (MNIST family with
    ``download`` left on), so that an absent data root is no error."""
    from mmpretrain.datasets import MNIST
    cls = dataset_class(node.get('type'))
    return bool(cls and issubclass(cls, MNIST) and node.get('download', True))


def _join(root: Optional[str], path: str) -> str:
    root = osp.expanduser(root) if isinstance(root, str) else ''
    return osp.join(root, osp.expanduser(path)) if path else root


def _find_image(folder: str, extensions: Sequence[str]) -> Optional[str]:
    """The first image file under ``folder`` (recursively), or None."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            if name.lower().endswith(extensions):
                return osp.join(dirpath, name)
    return None


def _num_classes(node: dict, cls) -> Optional[int]:
    """How many class folders the dataset will insist on, if it names its
    classes (ImageNet: 1000)."""
    metainfo = node.get('metainfo') or {}
    classes = node.get('classes', metainfo.get('classes'))
    if classes is None:
        classes = getattr(cls, 'METAINFO', {}).get('classes')
    if isinstance(classes, (list, tuple)):
        return len(classes)
    return None  # unnamed, or a file of names read at build time


def _image_folder_problem(folder: str, with_label: bool, extensions,
                          num_classes: Optional[int]) -> Optional[str]:
    if not osp.isdir(folder):
        return f'the image folder {folder!r} does not exist'
    layout = f'{folder}/<class>/<image>' if with_label else f'{folder}/<image>'
    if with_label:
        classes = sorted(
            entry.name for entry in os.scandir(folder) if entry.is_dir())
        if not classes:
            return (f'{folder!r} has no class folders (expected {layout}, '
                    'or an ann_file)')
        if num_classes is not None and len(classes) != num_classes:
            return (f'{folder!r} has {len(classes)} class folders; the '
                    f'dataset names {num_classes} classes')
    if _find_image(folder, extensions) is None:
        return (f'no image files ({", ".join(extensions)}) under {folder!r} '
                f'(expected {layout})')
    return None


def _image_list_problems(node: dict, cls) -> List[str]:
    """CustomDataset and its subclasses (ImageNet): an annotation file, or
    a tree of class folders under ``data_root/data_prefix``."""
    from mmpretrain.datasets import ImageNet
    data_root = node.get('data_root') or ''
    ann_file = node.get('ann_file') or ''
    prefix = node.get('data_prefix') or ''
    if isinstance(prefix, dict):
        prefix = prefix.get('img_path', '')
    with_label = node.get('with_label', True)
    split = node.get('split') or ''
    if issubclass(cls, ImageNet) and split:
        # ImageNet's own rules: the split names the folder and, when it
        # exists, the list file meta/<split>.txt; its test split is
        # unlabelled.
        prefix = prefix or split
        if not ann_file and osp.isfile(
                _join(data_root, osp.join('meta', f'{split}.txt'))):
            ann_file = osp.join('meta', f'{split}.txt')
        with_label = with_label and split != 'test'
    image_folder = _join(data_root, prefix)

    if ann_file:
        # The list file itself is checked with every ann_file; its images
        # are relative to the prefix folder.
        if prefix and not osp.isdir(image_folder):
            return [
                f'the image folder {image_folder!r} (data_root + '
                'data_prefix) does not exist'
            ]
        return []
    extensions = tuple(
        ext.lower()
        for ext in node.get('extensions') or getattr(cls, 'IMG_EXTENSIONS', (
            '.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff',
            '.webp')))
    problem = _image_folder_problem(
        image_folder, with_label, extensions,
        _num_classes(node, cls) if with_label else None)
    if problem is None:
        return []
    where = (f"meta/{split}.txt under {_join(data_root, '')!r} or "
             if issubclass(cls, ImageNet) and split else '')
    return [
        f'{cls.__name__} found no images: {problem}; it reads an '
        f'ann_file ({where}none given) or class folders'
    ]


def _mnist_problems(node: dict, cls) -> List[str]:
    from mmengine.fileio import join_path
    from mmpretrain.datasets.utils import rm_suffix
    if node.get('download', True):
        return []  # MMPretrain downloads whatever is missing
    prefix = node.get('data_prefix') or ''
    root = _join(node.get('data_root'), prefix)
    names = [rm_suffix(name) for name, _ in cls.train_list + cls.test_list]
    missing = [n for n in names if not osp.isfile(join_path(root, n))]
    if not missing:
        return []
    return [
        f'{cls.__name__} reads the un-gzipped IDX files {names} from '
        f'{root!r}; missing there: {missing}'
    ]


def _cub_problems(node: dict, cls) -> List[str]:
    root = _join(node.get('data_root'), '')
    missing = [n for n in CUB_FILES if not osp.isfile(osp.join(root, n))]
    if not osp.isdir(osp.join(root, CUB_IMAGE_DIR)):
        missing.append(CUB_IMAGE_DIR + '/')
    if not missing:
        return []
    return [
        f'{cls.__name__} reads {list(CUB_FILES)} and the folder '
        f'{CUB_IMAGE_DIR}/ from the official CUB_200_2011 layout in '
        f'{root!r}; missing there: {missing}'
    ]


def dataset_file_problems(node: dict) -> List[str]:
    """What the MMPretrain dataset configured by ``node`` will not find.

    Args:
        node (dict): a dataset config (``type`` plus its arguments) whose
            ``data_root``, if any, exists.

    Returns:
        list[str]: one message per problem, naming the files or folders
        that are missing and where they were looked for; empty when the
        dataset's files are there or its type is not known here.
    """
    from mmpretrain.datasets import CUB, MNIST, CustomDataset
    cls = dataset_class(node.get('type'))
    if cls is None:
        return []
    if issubclass(cls, MNIST):
        return _mnist_problems(node, cls)
    if issubclass(cls, CUB):
        return _cub_problems(node, cls)
    if issubclass(cls, CustomDataset):
        return _image_list_problems(node, cls)
    return []
