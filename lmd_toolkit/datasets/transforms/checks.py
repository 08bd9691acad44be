"""A pipeline runner that checks each crop fits its image.

mmcv's ``CenterCrop`` (``mmpretrain.CenterCrop``) and mmpretrain's
``RandomCrop`` (without padding) silently return a *smaller* image when the
image is smaller than the crop; the error then comes much later (a batch of
mixed sizes in the collate function, a shape error in the model) without
naming the file. The toolkit's datasets run their pipeline through
:func:`run_pipeline`, which raises :class:`ImageTooSmallError` naming the
image, its size, the crop and the fix before such a crop runs.
"""
from typing import Optional, Tuple

__all__ = ['ImageTooSmallError', 'crop_size_of', 'run_pipeline']


class ImageTooSmallError(ValueError):
    """An image is smaller than a crop of the pipeline."""


def _pair(size) -> Optional[Tuple[int, int]]:
    if isinstance(size, int):
        return size, size
    if isinstance(size, (tuple, list)) and len(size) == 2 and \
            all(isinstance(s, int) for s in size):
        return tuple(size)
    return None


def crop_size_of(transform) -> Optional[Tuple[int, int]]:
    """The ``(height, width)`` a transform crops to without padding, or None
    for transforms that do not crop or pad what is missing.

    Args:
        transform: A built transform of a pipeline.

    Returns:
        Optional[tuple]: ``(height, width)`` of the crop, or None.
    """
    name = type(transform).__name__
    if name == 'CenterCrop':  # mmcv: crop_size is (w, h)
        if getattr(transform, 'auto_pad', False):
            return None
        size = _pair(getattr(transform, 'crop_size', None))
        return None if size is None else (size[1], size[0])
    if name == 'RandomCrop':  # mmpretrain: crop_size is (h, w)
        if getattr(transform, 'pad_if_needed', False) or \
                getattr(transform, 'padding', None):
            return None
        return _pair(getattr(transform, 'crop_size', None))
    return None


def run_pipeline(pipeline, results: dict, dataset: str) -> Optional[dict]:
    """Run an mmengine ``Compose`` pipeline on ``results`` like
    ``pipeline(results)``, checking before each crop that the image is at
    least as large as the crop.

    Args:
        pipeline: The dataset's ``Compose`` (anything with ``transforms``;
            another callable is just called).
        results (dict): The data item with ``img`` ``(H, W, C)``.
        dataset (str): The dataset's name for messages.

    Returns:
        Optional[dict]: The pipeline's output (None if a transform returned
        None).

    Raises:
        ImageTooSmallError: Naming the image file, its size, the crop size
            and the fix.
    """
    transforms = getattr(pipeline, 'transforms', None)
    if transforms is None:
        return pipeline(results)
    for i, transform in enumerate(transforms):
        crop = crop_size_of(transform)
        img = results.get('img') if isinstance(results, dict) else None
        if crop is not None and hasattr(img, 'shape'):
            height, width = img.shape[:2]
            if height < crop[0] or width < crop[1]:
                raise ImageTooSmallError(
                    f'{dataset}: image {results.get("img_path")!r} is '
                    f'{height}x{width} (HxW) when pipeline step {i} '
                    f'({type(transform).__name__}) crops {crop[0]}x{crop[1]}'
                    '. Add a resize before the crop (e.g. dict(type='
                    f"'mmpretrain.ResizeEdge', scale={max(crop)}, "
                    "edge='short')), or remove the image.")
        results = transform(results)
        if results is None:
            return None
    return results
