"""Registration transforms (2D and 3D): warping with a MONAI DDF, naming a pair, drawing a deformation grid.

Displacements follow MONAI's DDF convention: ``(spatial_dims, *spatial)`` per item, voxel units, channel ``i``
along spatial axis ``i``; a warped image samples the moving image at ``x + ddf(x)`` (``monai.networks.blocks.Warp``,
``align_corners=True``).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.networks.blocks import Warp
from monai.transforms import MapTransform, Randomizable, SqueezeDim, Transform
from monai.utils import ensure_tuple, ensure_tuple_rep

__all__ = [
    "OASIS_FILE_STEMS",
    "DropTrailingSingleton",
    "DropTrailingSingletond",
    "pair_name",
    "WarpImage",
    "WarpImaged",
    "PairNamed",
    "deformation_grid",
    "SaveDeformationGridd",
    "RandSyntheticPair",
    "RandSyntheticPaird",
]

#: file stems that name a scan, not a subject: the subject is the parent folder (neurite-oasis layout)
OASIS_FILE_STEMS = ("slice_norm", "slice_orig", "aligned_norm", "aligned_orig", "norm", "orig")


def _stem(path: str | Path) -> str:
    path = Path(str(path))
    name = path.name
    for suffix in (".nii.gz", ".nii", ".mgz", ".png", ".tif", ".tiff", ".jpg", ".jpeg"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.parent.name if name in OASIS_FILE_STEMS and path.parent.name else name


def pair_name(moving: str | Path, fixed: str | Path) -> str:
    """``<moving>_to_<fixed>``, each the file stem, or the subject folder for neurite-oasis file names.

    >>> pair_name("OASIS_OAS1_0001_MR1/slice_norm.nii.gz", "OASIS_OAS1_0002_MR1/slice_norm.nii.gz")
    'OASIS_OAS1_0001_MR1_to_OASIS_OAS1_0002_MR1'
    """
    return f"{_stem(moving)}_to_{_stem(fixed)}"


class DropTrailingSingleton(Transform):
    """Drop trailing singleton axes of a channel-first image until it has ``spatial_dims`` spatial axes.

    neurite's 2D slices are ``H x W x 1`` volumes; plain 2D files (``H x W``) pass unchanged, so both load alike.
    Uses MONAI's ``SqueezeDim`` (which also updates the affine).

    Args:
        spatial_dims: number of spatial axes to keep (2 or 3).
    """

    def __init__(self, spatial_dims: int = 2) -> None:
        self.spatial_dims = spatial_dims
        self.squeeze = SqueezeDim(dim=-1, update_meta=True)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:  # noqa: D102
        while image.dim() > self.spatial_dims + 1 and image.shape[-1] == 1:
            image = self.squeeze(image)
        return image


class DropTrailingSingletond(MapTransform):
    """Dictionary version of :class:`DropTrailingSingleton`."""

    def __init__(self, keys: KeysCollection, spatial_dims: int = 2, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.transform = DropTrailingSingleton(spatial_dims)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:  # noqa: D102
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key])
        return d


class WarpImage(Transform):
    """Warp one channel-first image ``(C, *spatial)`` with a DDF ``(spatial_dims, *spatial)``.

    Args:
        mode: ``"bilinear"`` for images, ``"nearest"`` for label maps.
        padding_mode: ``"border"``, ``"zeros"`` or ``"reflection"``.
    """

    def __init__(self, mode: str = "bilinear", padding_mode: str = "border") -> None:
        self.warp = Warp(mode=mode, padding_mode=padding_mode)

    def __call__(self, image: torch.Tensor, ddf: torch.Tensor) -> torch.Tensor:
        """Return the warped image with the input's metadata (dtype float32)."""
        if tuple(image.shape[1:]) != tuple(ddf.shape[1:]):
            raise ValueError(f"image {tuple(image.shape)} and DDF {tuple(ddf.shape)} differ in spatial shape")
        img = torch.as_tensor(image).float().unsqueeze(0)
        field = torch.as_tensor(ddf).float().unsqueeze(0).to(img.device)
        with torch.no_grad():
            out = self.warp(img, field)[0]
        out = out.as_tensor() if isinstance(out, MetaTensor) else out
        if isinstance(image, MetaTensor):
            return MetaTensor(out, meta=dict(image.meta), affine=image.affine)
        return out


class WarpImaged(MapTransform):
    """Dictionary version of :class:`WarpImage`: warp ``keys`` with the DDF at ``ddf_key`` into ``output_keys``.

    Args:
        keys: images to warp (e.g. ``moving``, ``label``).
        ddf_key: key of the DDF (``pred`` after the network).
        output_keys: where the warped images go (default: overwrite ``keys``).
        mode: one interpolation mode per key (``bilinear`` images, ``nearest`` labels).
        padding_mode: one padding mode per key.
        allow_missing_keys: skip absent keys (labels are optional at inference).
    """

    def __init__(
        self,
        keys: KeysCollection,
        ddf_key: str = "pred",
        output_keys: KeysCollection | None = None,
        mode: Sequence[str] | str = "bilinear",
        padding_mode: Sequence[str] | str = "border",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.ddf_key = ddf_key
        self.output_keys = ensure_tuple(output_keys) if output_keys is not None else self.keys
        if len(self.output_keys) != len(self.keys):
            raise ValueError(f"output_keys {self.output_keys} must pair up with keys {self.keys}")
        modes = ensure_tuple_rep(mode, len(self.keys))
        paddings = ensure_tuple_rep(padding_mode, len(self.keys))
        self.warpers = [WarpImage(m, p) for m, p in zip(modes, paddings)]

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:  # noqa: D102
        d = dict(data)
        for key, out_key, warper in zip(self.keys, self.output_keys, self.warpers):
            if d.get(key) is None:  # evaluators put `label: None` in their output when a batch has no label
                if self.allow_missing_keys:
                    continue
                raise KeyError(f"key '{key}' is missing; the item has {sorted(map(str, d))}")
            d[out_key] = warper(d[key], d[self.ddf_key])
        return d


class PairNamed(MapTransform):
    """Rename loaded images after their pair: ``filename_or_obj`` becomes ``<moving dir>/<pair_name>``.

    Outputs saved with ``SaveImaged`` (``<pair>_warped.nii.gz``...) and per-case metrics are then keyed by the pair,
    not by the moving file's name (which is the same ``slice_norm.nii.gz`` for every OASIS subject). The metadata's
    ``spatial_shape`` is also set to the current one, so ``SaveImaged`` treats the first axis as the channel.

    Args:
        keys: items whose metadata is renamed (the moving image and its labels).
        moving_key: loaded moving image.
        fixed_key: loaded fixed image.
    """

    dictionary_only = "renames the moving image after its fixed partner"

    def __init__(
        self, keys: KeysCollection = ("image",), moving_key: str = "image", fixed_key: str = "fixed",
        allow_missing_keys: bool = True,
    ) -> None:  # fmt: skip
        super().__init__(keys, allow_missing_keys)
        self.moving_key, self.fixed_key = moving_key, fixed_key

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:  # noqa: D102
        d = dict(data)
        moving, fixed = d[self.moving_key], d[self.fixed_key]
        moving_path = moving.meta.get("filename_or_obj", "moving") if isinstance(moving, MetaTensor) else "moving"
        fixed_path = fixed.meta.get("filename_or_obj", "fixed") if isinstance(fixed, MetaTensor) else "fixed"
        name = str(Path(str(moving_path)).parent / pair_name(moving_path, fixed_path))
        for key in self.key_iterator(d):
            if isinstance(d[key], MetaTensor):
                d[key].meta["filename_or_obj"] = name
                # after squeezing neurite's H x W x 1 slices, the saved outputs must not get the singleton back
                d[key].meta["spatial_shape"] = np.asarray(d[key].shape[1:])
        return d


def deformation_grid(ddf: torch.Tensor | np.ndarray, spacing: int = 4, upsample: int = 4) -> np.ndarray:
    """Render a regular grid deformed by a DDF as an 8-bit image (for 3D, the middle slice of the last axis).

    The grid is drawn at ``upsample`` x the DDF's resolution, with a line every ``spacing`` voxels, and sampled at
    ``x + ddf(x)``: the picture shows where each fixed-space grid point comes from in the moving image.

    Args:
        ddf: ``(spatial_dims, *spatial)`` voxel-unit displacement (2 or 3 spatial dimensions).
        spacing: grid spacing in voxels.
        upsample: drawing resolution factor.

    Returns:
        ``(H * upsample, W * upsample)`` uint8 array, dark lines on white.
    """
    field = torch.as_tensor(np.asarray(ddf) if not isinstance(ddf, torch.Tensor) else ddf).float()
    if isinstance(field, MetaTensor):
        field = field.as_tensor()
    if field.dim() == 4:  # 3D: in-plane components of the middle slice of the last axis
        field = field[:2, ..., field.shape[-1] // 2]
    if field.dim() != 3 or field.shape[0] != 2:
        raise ValueError(f"expected a (2, H, W) or (3, H, W, D) displacement, got {tuple(np.shape(ddf))}")
    h, w = field.shape[1:]
    big = F.interpolate(field[None], size=(h * upsample, w * upsample), mode="bilinear", align_corners=True)[0]
    big = big * upsample
    rows = torch.arange(h * upsample).float()[:, None].expand(h * upsample, w * upsample)
    cols = torch.arange(w * upsample).float()[None, :].expand(h * upsample, w * upsample)
    period = spacing * upsample
    lines = ((rows % period) < 1.5) | ((cols % period) < 1.5)
    canvas = torch.where(lines, 0.0, 1.0)[None, None]
    warped = Warp(mode="bilinear", padding_mode="border")(canvas, big[None])[0, 0]
    return (warped.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


class SaveDeformationGridd(MapTransform):
    """Write :func:`deformation_grid` of the DDF at ``keys`` as ``<output_dir>/<name>_<postfix>.png``.

    The name is the stem of ``filename_or_obj`` in the DDF's (or ``meta_key``'s) metadata.

    Args:
        keys: DDF key (``pred``).
        output_dir: folder of the PNG files (created when needed).
        output_postfix: suffix of the file name.
        meta_key: key whose metadata names the file (default: the DDF itself).
        spacing: grid spacing in voxels.
        upsample: drawing resolution factor.
    """

    dictionary_only = "names its file from the item's meta data (``meta_key``)"

    def __init__(
        self, keys: KeysCollection = ("pred",), output_dir: str | Path = "outputs", output_postfix: str = "grid",
        meta_key: str | None = None, spacing: int = 4, upsample: int = 4, allow_missing_keys: bool = False,
    ) -> None:  # fmt: skip
        super().__init__(keys, allow_missing_keys)
        self.output_dir = Path(output_dir)
        self.output_postfix = output_postfix
        self.meta_key = meta_key
        self.spacing, self.upsample = spacing, upsample

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:  # noqa: D102
        from PIL import Image

        d = dict(data)
        for key in self.key_iterator(d):
            source = d[self.meta_key] if self.meta_key else d[key]
            name = source.meta.get("filename_or_obj", key) if isinstance(source, MetaTensor) else key
            base = Path(str(name)).name
            stem = base if "_to_" in base else _stem(name)  # pair names (PairNamed) are kept as they are
            self.output_dir.mkdir(parents=True, exist_ok=True)
            # rows of the PNG run along spatial axis 0, columns along axis 1
            Image.fromarray(deformation_grid(d[key], self.spacing, self.upsample)).save(
                self.output_dir / f"{stem}_{self.output_postfix}.png"
            )
        return d


class RandSyntheticPair(Randomizable, Transform):
    """Make a moving image from a fixed one: a smooth random deformation and an intensity change (2D or 3D).

    The deformation is a Gaussian control grid (``grid`` points per axis, standard deviation drawn uniformly in
    ``amplitude``, as a fraction of each axis' size) upsampled cubically (trilinearly in 3D) to a voxel DDF; the
    intensity change is a random gamma (``exp(U(-g, g))``) and Gaussian noise. Labels follow the same deformation
    with nearest interpolation. Registering the result back to the fixed image is a task with a known answer for
    every image, whatever the anatomy: it teaches the deformation, not the sample.

    Args:
        amplitude: range of the control-point standard deviation (fraction of the axis size).
        grid: control points per axis.
        gamma: half-width of the log-gamma range (0: no intensity change).
        noise: standard deviation of the added noise (images in [0, 1]).
    """

    def __init__(self, amplitude: Sequence[float] = (0.0, 0.06), grid: int = 6, gamma: float = 0.2,
                 noise: float = 0.02) -> None:  # fmt: skip
        if len(amplitude) != 2 or not 0 <= amplitude[0] <= amplitude[1]:
            raise ValueError(f"amplitude must be a range (low, high) with 0 <= low <= high, got {amplitude}")
        self.amplitude, self.grid, self.gamma, self.noise = tuple(float(a) for a in amplitude), grid, gamma, noise
        self._ddf: torch.Tensor | None = None
        self._gamma = 1.0

    def randomize(self, spatial_shape: Sequence[int]) -> None:
        """Draw the DDF ``(d, *spatial_shape)`` in voxels and the gamma."""
        d = len(spatial_shape)
        sigma = self.R.uniform(*self.amplitude)
        control = self.R.normal(0.0, 1.0, size=(1, d) + (self.grid,) * d).astype(np.float32)
        control *= sigma * np.asarray(spatial_shape, np.float32).reshape((1, d) + (1,) * d)
        mode = "bicubic" if d == 2 else "trilinear"
        field = F.interpolate(torch.from_numpy(control), size=tuple(spatial_shape), mode=mode, align_corners=True)
        self._ddf = field[0]
        self._gamma = float(np.exp(self.R.uniform(-self.gamma, self.gamma)))

    def __call__(self, image: torch.Tensor, label: torch.Tensor | None = None, randomize: bool = True):
        """Return ``(moving image, moving label or None)`` made from the fixed ``image`` ``(C, *spatial)``."""
        img = torch.as_tensor(image).float()
        if randomize or self._ddf is None:
            self.randomize(img.shape[1:])
        warped = WarpImage("bilinear", "border")(img, self._ddf)
        warped = warped.clamp(0, 1) ** self._gamma
        if self.noise > 0:
            noise = self.R.normal(0.0, self.noise, size=tuple(warped.shape)).astype(np.float32)
            warped = warped + torch.from_numpy(noise)
        warped = warped.clamp(0, 1)
        warped_label = None
        if label is not None:
            warped_label = WarpImage("nearest", "border")(torch.as_tensor(label).float(), self._ddf)
        return warped, warped_label


class RandSyntheticPaird(Randomizable, MapTransform):
    """Dictionary version of :class:`RandSyntheticPair`: sometimes replace a pair's moving image by a deformed fixed.

    With probability ``prob`` the moving image (and its label) becomes a synthetic deformation of the fixed image
    (and of its label).

    Args:
        moving_key: moving image (replaced).
        fixed_key: fixed image (the source of the synthetic moving image).
        label_key: moving label (replaced when the item has a fixed label).
        fixed_label_key: fixed label.
        prob: probability of replacing a pair.
        amplitude: range of the control-point standard deviation (:class:`RandSyntheticPair`).
        grid: control points per axis.
        gamma: half-width of the log-gamma range.
        noise: standard deviation of the added noise.
    """

    def __init__(
        self, moving_key: str = "image", fixed_key: str = "fixed", label_key: str = "label",
        fixed_label_key: str = "fixed_label", prob: float = 0.5, amplitude: Sequence[float] = (0.0, 0.06),
        grid: int = 6, gamma: float = 0.2, noise: float = 0.02,
    ) -> None:  # fmt: skip
        super().__init__([moving_key, fixed_key], allow_missing_keys=False)
        self.moving_key, self.fixed_key = moving_key, fixed_key
        self.label_key, self.fixed_label_key = label_key, fixed_label_key
        self.prob = prob
        self.pair = RandSyntheticPair(amplitude, grid, gamma, noise)
        self._do = False

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        """Seed this transform and its :class:`RandSyntheticPair` alike (MONAI's per-transform seeding)."""
        super().set_random_state(seed, state)
        self.pair.set_random_state(seed, state)
        return self

    def randomize(self, data: object = None) -> None:
        """Decide whether this pair is replaced."""
        self._do = self.R.random_sample() < self.prob

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:  # noqa: D102
        d = dict(data)
        self.randomize()
        if not self._do:
            return d
        fixed_label = d.get(self.fixed_label_key)
        moving, label = self.pair(d[self.fixed_key], fixed_label)
        meta_source = d[self.moving_key]
        if isinstance(meta_source, MetaTensor):
            moving = MetaTensor(moving.as_tensor() if isinstance(moving, MetaTensor) else moving,
                                meta=dict(meta_source.meta), affine=meta_source.affine)  # fmt: skip
        d[self.moving_key] = moving
        if label is not None and self.label_key in d:
            d[self.label_key] = label.to(torch.as_tensor(d[self.label_key]).dtype)
        return d
