"""A dataset of every image file under a folder, for users' own photos."""
import os
import os.path as osp
import warnings
from typing import Callable, List, Optional, Sequence, Union

from mmengine.dataset import BaseDataset

from lmd_toolkit.registry import DATASETS
from .image_io import (IMG_EXTENSIONS, ImageReadWarning, check_image_header,
                       has_image_extension, read_rgb_image, warn_once)
from .transforms.checks import run_pipeline


@DATASETS.register_module()
class ImageFolderDataset(BaseDataset):
    """Every image file under a folder (recursively), read as 8-bit RGB.

    Files are found by extension (any case) and listed in sorted order of
    their path relative to the folder, so the order is the same on every
    machine. Files that are empty or whose header Pillow cannot read are
    skipped when the folder is scanned, with an ``ImageReadWarning`` naming
    each. The dataset reads the image itself, before the pipeline, with
    :func:`lmd_toolkit.datasets.image_io.read_rgb_image` (conversions are
    described there), and adds ``img`` (``(H, W, 3)`` uint8 RGB),
    ``img_shape`` and ``ori_shape`` (both ``(H, W)``) to the data item. A
    file that still fails to decode warns and, in training, is replaced by
    another random index (mmengine's refetch); with ``test_mode=True`` it
    raises an error naming the file (and so does a latent cache build, which
    needs every image). The reasons of skipped files are kept in
    :attr:`unreadable` (path -> reason). An image smaller than a crop of the
    pipeline (a ``CenterCrop`` without a resize before it) raises
    ``ImageTooSmallError`` naming the image, its size and the crop. Labels
    are not read: the toolkit's pretraining is self-supervised.

    Args:
        data_root (str): The folder to scan, or the root that
            ``data_prefix['img_path']`` is relative to. Defaults to ''.
        data_prefix (dict, optional): ``dict(img_path='sub/folder')``, joined
            to ``data_root`` unless absolute (mmengine's convention). None
            means ``dict(img_path='')``. Defaults to None.
        pipeline (Sequence[dict | Callable]): Transforms applied after the
            image is read, e.g. ``mmpretrain.RandomResizedCrop`` ...
            ``mmpretrain.PackInputs``. Defaults to ().
        test_mode (bool): Raise on an undecodable file instead of drawing
            another index. Defaults to False.
        extensions (Sequence[str]): File name endings to accept, compared
            case-insensitively. Defaults to ``IMG_EXTENSIONS``
            (.jpg .jpeg .png .bmp .tif .tiff .webp .ppm .pgm).
        check_files (bool): Open each file's header while scanning and skip
            the unreadable ones. Turn off only for very large, trusted
            folders. Defaults to True.
    """

    def __init__(self,
                 data_root: str = '',
                 data_prefix: Optional[dict] = None,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 test_mode: bool = False,
                 extensions: Sequence[str] = IMG_EXTENSIONS,
                 check_files: bool = True,
                 **kwargs) -> None:
        if data_prefix is None:
            data_prefix = dict(img_path='')
        if set(data_prefix) != {'img_path'}:
            raise ValueError(
                'ImageFolderDataset: data_prefix must be a dict with the one '
                f"key 'img_path', got {data_prefix!r}")
        if kwargs.get('ann_file'):
            raise ValueError(
                'ImageFolderDataset scans data_root for images and reads no '
                f"annotation file; remove ann_file={kwargs['ann_file']!r}")
        if isinstance(extensions, str) or not extensions:
            raise ValueError('ImageFolderDataset: extensions must be a '
                             f'non-empty list like {list(IMG_EXTENSIONS)}, '
                             f'got {extensions!r}')
        self.extensions = tuple(ext.lower() for ext in extensions)
        self.check_files = check_files
        self.unreadable = {}
        super().__init__(
            data_root=data_root,
            data_prefix=data_prefix,
            pipeline=list(pipeline),
            test_mode=test_mode,
            **kwargs)

    @property
    def folder(self) -> str:
        """The folder that is scanned: ``data_root`` joined with the prefix."""
        return self.data_prefix['img_path']

    def load_data_list(self) -> List[dict]:
        """Scan the folder; return one ``dict(img_path=...)`` per image."""
        folder = self.folder
        if not folder:
            raise ValueError('ImageFolderDataset: set data_root (or '
                             "data_prefix=dict(img_path=...)) to a folder")
        if not osp.isdir(folder):
            raise FileNotFoundError(
                f'ImageFolderDataset: image folder {folder!r} does not exist '
                'or is not a folder; check data_root and data_prefix')
        relative_paths = []
        for directory, _, file_names in os.walk(folder):
            for name in file_names:
                if has_image_extension(name, self.extensions):
                    path = osp.join(directory, name)
                    relative_paths.append(osp.relpath(path, folder))
        relative_paths.sort()
        data_list = []
        for relative in relative_paths:
            path = osp.join(folder, relative)
            problem = check_image_header(path) if self.check_files else None
            if problem is not None:
                warnings.warn(f'{path}: skipped, {problem} '
                              f'(ImageFolderDataset {folder!r})',
                              ImageReadWarning)
                continue
            data_list.append(dict(img_path=path))
        if not data_list:
            raise ValueError(
                f'ImageFolderDataset: no readable image file in {folder!r} '
                f'(searched recursively for {" ".join(self.extensions)}, '
                f'any case; {len(relative_paths)} had such an extension)')
        return data_list

    def prepare_data(self, idx: int) -> Optional[dict]:
        """Read image ``idx`` and run the pipeline on it.

        Args:
            idx (int): Index into the dataset.

        Returns:
            Optional[dict]: The pipeline's output, or None when the file
            cannot be decoded in training (mmengine then draws another index).
        """
        data_info = self.get_data_info(idx)
        path = data_info['img_path']
        try:
            img = read_rgb_image(path)
        except Exception as error:
            if self.test_mode:
                raise RuntimeError(
                    f'ImageFolderDataset ({self.folder!r}): cannot decode '
                    f'image file {path!r} (index {idx}): {error}. Replace or '
                    'delete the file.') from error
            self.unreadable[path] = f'cannot be decoded: {error}'
            warn_once(
                path, 'decode', f'{path}: cannot be decoded ({error}); '
                f'skipped by ImageFolderDataset ({self.folder!r}), another '
                'image is drawn instead')
            return None
        data_info['img'] = img
        data_info['img_shape'] = img.shape[:2]
        data_info['ori_shape'] = img.shape[:2]
        return run_pipeline(self.pipeline, data_info,
                            f'ImageFolderDataset ({self.folder!r})')
