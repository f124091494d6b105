"""FCOS (Tian et al., ICCV 2019) on MONAI's ResNet + FPN blocks, with ESORDA's optional SOREN neck.

MONAI's detection stack has anchor-based RetinaNet only; this is the anchor-free FCOS the ESORDA paper uses, written
on MONAI's ``ResNet``, ``BackboneWithFPN`` and ``LastLevelP6P7`` (torchvision's FCOS was read, not copied; its box
ops ``sigmoid_focal_loss``, ``generalized_box_iou_loss`` and ``batched_nms`` are used).

- :class:`FCOSNetwork`: ResNet C3..C5 -> FPN P3..P7 (strides 8..128) -> optional :class:`~common.networks.SOREN`
  -> a head shared by the levels: a classification tower (focal loss) and a regression tower giving the four
  distances ``l, t, r, b`` to the box sides (in units of the level's stride, made positive by ``exp``) and the
  centre-ness logit. It returns a list of maps: the classification logits of every level, then per level the
  regression map with the centre-ness as a fifth channel (``[l, t, r, b, ctr]``), so that the list has the
  ``classification maps, then as many box maps`` form of the collection's detection networks. With
  ``return_features`` set it appends the neck's maps (what :class:`~common.networks.DomainAdaptationHead` aligns).
- :func:`fcos_targets`: FCOS target assignment: the points of a level inside a box (with centre sampling: within
  ``radius`` strides of the box centre), whose largest distance to the sides falls in the level's scale range,
  each point taking the smallest such box.
- :func:`fcos_losses`: focal loss (sum over points / positives), GIoU loss weighted by the centre-ness targets,
  and BCE of the centre-ness.
- :class:`FCOSDetector`: the training and inference wrapper the collection's detection engines expect of a
  detector (``network``, target keys, ``detector(images, targets)`` -> losses in train mode,
  ``detector(images, use_inferer=...)`` -> per-image boxes in eval mode). Inference over images of any size runs by
  tiles with overlap (:meth:`FCOSDetector.set_tiling`), the boxes of all tiles merged by NMS.

Images follow MONAI's detection layout: ``(C, X, Y)`` with x (the file's column) along the first spatial axis and
boxes ``[x1, y1, x2, y2]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from monai.networks.blocks.backbone_fpn_utils import BackboneWithFPN
from monai.networks.blocks.feature_pyramid_network import LastLevelP6P7
from monai.networks.nets import resnet
from torch import Tensor, nn
from torchvision.ops import batched_nms, generalized_box_iou_loss, sigmoid_focal_loss

from .skin_classifiers import load_pretrained_weights
from .soren import SOREN

__all__ = [
    "FCOS_SCALE_RANGES",
    "FCOS_STRIDES",
    "FCOSDetector",
    "FCOSHead",
    "FCOSNetwork",
    "TileMerger",
    "fcos_losses",
    "fcos_points",
    "fcos_targets",
]

FCOS_STRIDES: tuple[int, ...] = (8, 16, 32, 64, 128)
"""Strides of P3..P7."""

FCOS_SCALE_RANGES: tuple[tuple[float, float], ...] = ((0, 64), (64, 128), (128, 256), (256, 512), (512, math.inf))
"""FCOS's range of the largest point-to-side distance assigned to each of P3..P7 (pixels)."""

_RESNETS = {18: ("basic", [2, 2, 2, 2]), 34: ("basic", [3, 4, 6, 3]), 50: ("bottleneck", [3, 4, 6, 3])}


class FCOSHead(nn.Module):
    """FCOS head shared by the levels: classification tower and regression tower (boxes + centre-ness).

    Args:
        channels: input channels (the FPN width, a multiple of 8).
        num_classes: foreground classes.
        num_convs: 3x3 conv + GroupNorm + ReLU layers per tower (FCOS: 4).
        prior_probability: initial foreground probability of the classification logits (focal loss init).
        num_levels: levels, one learnable scale of the regression each.
    """

    def __init__(
        self, channels: int, num_classes: int = 1, num_convs: int = 4, prior_probability: float = 0.01,
        num_levels: int = 5,
    ) -> None:  # fmt: skip
        super().__init__()

        def tower() -> nn.Sequential:
            layers: list[nn.Module] = []
            for _ in range(num_convs):
                layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.GroupNorm(8, channels), nn.ReLU()]
            return nn.Sequential(*layers)

        self.cls_tower, self.reg_tower = tower(), tower()
        self.cls_logits = nn.Conv2d(channels, num_classes, 3, padding=1)
        self.bbox_reg = nn.Conv2d(channels, 4, 3, padding=1)
        self.centerness = nn.Conv2d(channels, 1, 3, padding=1)
        self.scales = nn.Parameter(torch.ones(num_levels))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.01)
                nn.init.zeros_(module.bias)
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - prior_probability) / prior_probability))

    def forward(self, features: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Per level: classification logits ``(B, K, H, W)`` and ``[l, t, r, b, ctr]`` ``(B, 5, H, W)``."""
        cls_maps: list[Tensor] = []
        box_maps: list[Tensor] = []
        for i, f in enumerate(features):
            cls_maps.append(self.cls_logits(self.cls_tower(f)))
            r = self.reg_tower(f)
            # distances in strides; exp (the FCOS paper's) starts every box at one stride and never stops the gradient
            distances = torch.exp((self.bbox_reg(r) * self.scales[i]).clamp(max=10.0))
            box_maps.append(torch.cat([distances, self.centerness(r)], dim=1))
        return cls_maps, box_maps


class FCOSNetwork(nn.Module):
    """ResNet + FPN (P3..P7) + optional SOREN neck + FCOS head; returns the head maps as one list.

    Args:
        depth: ResNet depth (18, 34 or 50; the paper: ResNet-50).
        in_channels: image channels (3: RGB H&E).
        num_classes: foreground classes (1: mitotic figure).
        fpn_channels: FPN, neck and head width (a multiple of 8).
        soren: insert the SOREN neck.
        head_convs: convolutions per head tower.
        weights_path: optional local ResNet state dict (torchvision names; nothing is downloaded).

    Attributes:
        strides: stride of each level (:data:`FCOS_STRIDES`).
        return_features: append the neck's maps to the output (set by :class:`FCOSDetector` while training with
            domain adaptation; the exported network returns the head maps only).

    Raises:
        ValueError: unsupported depth or a width that is not a multiple of 8.
    """

    def __init__(
        self,
        depth: int = 18,
        in_channels: int = 3,
        num_classes: int = 1,
        fpn_channels: int = 64,
        soren: bool = True,
        head_convs: int = 4,
        weights_path: str | None = None,
    ) -> None:
        super().__init__()
        if depth not in _RESNETS:
            raise ValueError(f"unsupported ResNet depth {depth}; choose one of {sorted(_RESNETS)}")
        if fpn_channels % 8:
            raise ValueError(f"fpn_channels must be a multiple of 8 (GroupNorm(8)), got {fpn_channels}")
        block, layers = _RESNETS[depth]
        body = resnet.ResNet(
            block, layers, resnet.get_inplanes(), spatial_dims=2, n_input_channels=in_channels, conv1_t_size=7,
            conv1_t_stride=2, bias_downsample=False, feed_forward=False,
        )  # fmt: skip
        if weights_path is not None:
            load_pretrained_weights(body, weights_path)
        expansion = 1 if block == "basic" else 4
        in_list = [c * expansion for c in resnet.get_inplanes()[1:]]
        self.backbone = BackboneWithFPN(
            body, {"layer2": "0", "layer3": "1", "layer4": "2"}, in_list, fpn_channels, 2,
            LastLevelP6P7(2, fpn_channels, fpn_channels),
        )  # fmt: skip
        self.neck = SOREN(fpn_channels) if soren else nn.Identity()
        self.use_soren = bool(soren)
        self.head = FCOSHead(fpn_channels, num_classes, head_convs, num_levels=len(FCOS_STRIDES))
        self.num_classes = int(num_classes)
        self.strides = list(FCOS_STRIDES)
        self.return_features = False

    def forward(self, images: Tensor) -> list[Tensor]:
        """Classification maps of P3..P7, then ``[l, t, r, b, ctr]`` maps of P3..P7 (then the neck's maps when
        :attr:`return_features` is set).
        """  # noqa: D205
        pyramid = self.backbone(images)
        features = [pyramid[k] for k in pyramid.keys()]
        if self.use_soren:
            features = self.neck(features)
        cls_maps, box_maps = self.head(features)
        out = cls_maps + box_maps
        if self.return_features:
            out = out + features
        return out


def _inner(network: nn.Module) -> nn.Module:
    return getattr(network, "module", network)  # DistributedDataParallel keeps the network as .module


def fcos_points(shapes: Sequence[Sequence[int]], strides: Sequence[int], device: Any = None) -> list[Tensor]:
    """Image coordinates ``(N_l, 2)`` (x, y) of every location of each level: ``index * stride + stride // 2``.

    Args:
        shapes: ``(X, Y)`` sizes of each level's map (x along the first axis).
        strides: each level's stride.
        device: tensor device.
    """
    points = []
    for (nx, ny), stride in zip(shapes, strides):
        xs = torch.arange(nx, device=device, dtype=torch.float32) * stride + stride // 2
        ys = torch.arange(ny, device=device, dtype=torch.float32) * stride + stride // 2
        gx, gy = torch.meshgrid(xs, ys, indexing="ij")
        points.append(torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1))
    return points


def fcos_targets(
    points: Sequence[Tensor],
    strides: Sequence[int],
    boxes: Tensor,
    labels: Tensor,
    scale_ranges: Sequence[Sequence[float]] = FCOS_SCALE_RANGES,
    radius: float = 1.5,
) -> tuple[Tensor, Tensor]:
    """FCOS target assignment of one image.

    A point is positive for a box when it lies inside the box and, with centre sampling, within ``radius`` strides
    of the box centre (that square clipped to the box), and the largest of its distances to the four sides is in its
    level's scale range. A point positive for several boxes takes the one of smallest area.

    Args:
        points: per level ``(N_l, 2)`` point coordinates (:func:`fcos_points`).
        strides: per level stride.
        boxes: ``(M, 4)`` gt boxes ``[x1, y1, x2, y2]``.
        labels: ``(M,)`` gt labels.
        scale_ranges: per level ``(low, high)`` range of the largest side distance.
        radius: centre-sampling radius in strides (``<= 0``: no centre sampling).

    Returns:
        ``(labels (N,), boxes (N, 4))`` over the concatenated points: the label of each point (``-1``: background)
        and its assigned box (zeros for background).
    """
    all_points = torch.cat(list(points), dim=0)
    n = all_points.shape[0]
    if boxes.numel() == 0:
        return torch.full((n,), -1, dtype=torch.long, device=all_points.device), all_points.new_zeros((n, 4))
    boxes = boxes.to(all_points)
    level_stride = torch.cat(
        [torch.full((len(p),), float(s), device=all_points.device) for p, s in zip(points, strides)]
    )
    low = torch.cat(
        [torch.full((len(p),), float(r[0]), device=all_points.device) for p, r in zip(points, scale_ranges)]
    )
    high = torch.cat(
        [torch.full((len(p),), float(r[1]), device=all_points.device) for p, r in zip(points, scale_ranges)]
    )
    x, y = all_points[:, 0:1], all_points[:, 1:2]
    left, top = x - boxes[:, 0], y - boxes[:, 1]
    right, bottom = boxes[:, 2] - x, boxes[:, 3] - y
    distances = torch.stack([left, top, right, bottom], dim=2)  # (N, M, 4)
    inside = distances.min(dim=2).values > 0
    if radius > 0:
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        r = level_stride[:, None] * radius
        sx1, sy1 = torch.maximum(cx - r, boxes[:, 0]), torch.maximum(cy - r, boxes[:, 1])
        sx2, sy2 = torch.minimum(cx + r, boxes[:, 2]), torch.minimum(cy + r, boxes[:, 3])
        inside = inside & (x > sx1) & (x < sx2) & (y > sy1) & (y < sy2)
    largest = distances.max(dim=2).values
    in_range = (largest >= low[:, None]) & (largest <= high[:, None])
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[None].expand(n, -1).clone()
    area[~(inside & in_range)] = math.inf
    best_area, best = area.min(dim=1)
    assigned_labels = labels.to(all_points.device).long()[best]
    assigned_labels[torch.isinf(best_area)] = -1
    return assigned_labels, boxes[best]


def _centerness_target(points: Tensor, boxes: Tensor) -> Tensor:
    left, top = points[:, 0] - boxes[:, 0], points[:, 1] - boxes[:, 1]
    right, bottom = boxes[:, 2] - points[:, 0], boxes[:, 3] - points[:, 1]
    lr = torch.minimum(left, right) / torch.maximum(left, right).clamp(min=1e-6)
    tb = torch.minimum(top, bottom) / torch.maximum(top, bottom).clamp(min=1e-6)
    return torch.sqrt((lr * tb).clamp(min=0))


def _flatten(maps: Sequence[Tensor], channels: int) -> Tensor:
    """``[(B, C, X, Y)]`` -> ``(B, sum X*Y, C)`` in the order of :func:`fcos_points`."""
    return torch.cat([m.permute(0, 2, 3, 1).reshape(m.shape[0], -1, channels) for m in maps], dim=1)


def _decode(points: Tensor, distances: Tensor, strides: Tensor) -> Tensor:
    d = distances * strides[:, None]
    return torch.stack(
        [points[:, 0] - d[:, 0], points[:, 1] - d[:, 1], points[:, 0] + d[:, 2], points[:, 1] + d[:, 3]], 1
    )


def fcos_losses(
    cls_maps: Sequence[Tensor],
    box_maps: Sequence[Tensor],
    targets: Sequence[tuple[Tensor, Tensor]],
    points: Sequence[Tensor],
    strides: Sequence[int],
    focal_alpha: float = 0.25,
    focal_gamma: float = 2.0,
) -> dict[str, Tensor]:
    """FCOS's three losses over a batch.

    Args:
        cls_maps: per level ``(B, K, X, Y)`` logits.
        box_maps: per level ``(B, 5, X, Y)`` ``[l, t, r, b]`` in strides and the centre-ness logit.
        targets: per image ``(labels (N,), boxes (N, 4))`` of :func:`fcos_targets`.
        points: per level point coordinates.
        strides: per level stride.
        focal_alpha: focal loss alpha.
        focal_gamma: focal loss gamma.

    Returns:
        ``{"classification": focal loss sum / positives, "box_regression": GIoU loss weighted by the centre-ness
        targets, "centerness": BCE over the positives}``; without positives the last two are zero terms that still
        reach every head parameter (so that a distributed wrapper sees a gradient for each).
    """
    num_classes = cls_maps[0].shape[1]
    cls = _flatten(cls_maps, num_classes)
    reg = _flatten(box_maps, 5)
    all_points = torch.cat(list(points), dim=0)
    level_stride = torch.cat([torch.full((len(p),), float(s), device=cls.device) for p, s in zip(points, strides)])
    labels = torch.stack([t[0] for t in targets]).to(cls.device)
    boxes = torch.stack([t[1] for t in targets]).to(cls.device)
    positive = labels >= 0
    num_pos = max(float(positive.sum()), 1.0)
    one_hot = torch.zeros_like(cls)
    one_hot[positive] = F.one_hot(labels[positive], num_classes).to(cls)
    cls_loss = sigmoid_focal_loss(cls, one_hot, alpha=focal_alpha, gamma=focal_gamma, reduction="sum") / num_pos
    zero = reg.sum() * 0.0
    if not bool(positive.any()):
        return {"classification": cls_loss, "box_regression": zero, "centerness": zero}
    batch_points = all_points[None].expand(labels.shape[0], -1, -1)[positive]
    pred_boxes = _decode(batch_points, reg[..., :4][positive], level_stride[None].expand(labels.shape[0], -1)[positive])
    gt_boxes = boxes[positive]
    ctr_target = _centerness_target(batch_points, gt_boxes)
    giou = generalized_box_iou_loss(pred_boxes, gt_boxes, reduction="none")
    box_loss = (giou * ctr_target).sum() / ctr_target.sum().clamp(min=1e-6) + zero
    ctr_loss = F.binary_cross_entropy_with_logits(reg[..., 4][positive], ctr_target, reduction="mean") + zero
    return {"classification": cls_loss, "box_regression": box_loss, "centerness": ctr_loss}


class FCOSDetector(nn.Module):
    """Training and inference around an :class:`FCOSNetwork` (the interface of the collection's detection engines).

    Train mode: ``detector(images, targets)`` (lists of ``(C, X, Y)`` tensors and ``{"box", "label"}`` dicts)
    returns ``{"classification", "box_regression", "centerness"}`` losses; with ``return_features=True`` also
    ``"features"`` (the neck's maps, for domain adaptation) and ``"head"`` (the head maps). Eval mode:
    ``detector(images, use_inferer=...)`` returns per image ``{"box", "label", "label_scores"}`` (MONAI Label's
    keys): scores ``sqrt(sigmoid(cls) * sigmoid(ctr))`` (FCOS), the ``topk_candidates_per_level`` best above
    ``score_thresh`` per level, class-wise NMS at ``nms_thresh``, at most ``detections_per_img``. With
    ``use_inferer`` and :meth:`set_tiling`, an image is run tile by tile (``tile_size`` with ``overlap``), each
    tile's boxes shifted to the image and all merged by NMS: memory is bounded by the tile, not the image.

    Args:
        network: an :class:`FCOSNetwork` (possibly DDP-wrapped) or its TorchScript module.
        strides: level strides (the network's; a TorchScript module does not carry them).
        num_classes: foreground classes.
        scale_ranges: FCOS scale range per level.
        center_sampling_radius: centre-sampling radius in strides.
        score_thresh: smallest score kept.
        topk_candidates_per_level: candidates per level before NMS.
        nms_thresh: NMS IoU threshold.
        detections_per_img: boxes kept per image.
        size_divisible: images are padded to a multiple of it.
        box_key: target and output box key.
        label_key: target and output label key (scores under ``label_key + "_scores"``).
    """

    def __init__(
        self,
        network: nn.Module,
        strides: Sequence[int] = FCOS_STRIDES,
        num_classes: int = 1,
        scale_ranges: Sequence[Sequence[float]] = FCOS_SCALE_RANGES,
        center_sampling_radius: float = 1.5,
        score_thresh: float = 0.05,
        topk_candidates_per_level: int = 1000,
        nms_thresh: float = 0.3,
        detections_per_img: int = 100,
        size_divisible: int = 32,
        box_key: str = "box",
        label_key: str = "label",
    ) -> None:
        super().__init__()
        self.network = network
        self.strides = [int(s) for s in strides]
        self.num_classes = int(num_classes)
        self.scale_ranges = [tuple(float(v) for v in r) for r in scale_ranges]
        self.center_sampling_radius = float(center_sampling_radius)
        self.score_thresh = float(score_thresh)
        self.topk_candidates_per_level = int(topk_candidates_per_level)
        self.nms_thresh = float(nms_thresh)
        self.detections_per_img = int(detections_per_img)
        self.size_divisible = int(size_divisible)
        self.target_box_key, self.target_label_key = box_key, label_key
        self.pred_score_key = label_key + "_scores"
        self.cls_key, self.box_reg_key, self.centerness_key = "classification", "box_regression", "centerness"
        self.tile_size: tuple[int, int] | None = None
        self.overlap = 0.25

    def set_tiling(self, tile_size: int | Sequence[int], overlap: float = 0.25) -> None:
        """Run ``use_inferer=True`` inference by tiles of ``tile_size`` (x, y) overlapping by ``overlap``.

        Raises:
            ValueError: an overlap outside ``[0, 1)`` or a non-positive tile size.
        """
        size = (int(tile_size), int(tile_size)) if isinstance(tile_size, int) else tuple(int(t) for t in tile_size)
        if not 0.0 <= float(overlap) < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        if min(size) < 1:
            raise ValueError(f"tile_size must be positive, got {list(size)}")
        self.tile_size, self.overlap = size, float(overlap)  # type: ignore[assignment]
        # what MONAI Label logs of a detector's inferer (it reads inferer.__dict__ when the attribute exists)
        self.inferer = SimpleNamespace(tile_size=list(size), overlap=self.overlap)

    def set_box_selector_parameters(
        self, score_thresh: float = 0.05, topk_candidates_per_level: int = 1000, nms_thresh: float = 0.3,
        detections_per_img: int = 100,
    ) -> None:  # fmt: skip
        """Box selection of inference (the names of MONAI's ``RetinaNetDetector``)."""
        self.score_thresh, self.topk_candidates_per_level = float(score_thresh), int(topk_candidates_per_level)
        self.nms_thresh, self.detections_per_img = float(nms_thresh), int(detections_per_img)

    # ---- helpers ------------------------------------------------------------------------------------------------

    def _batch(self, images: Sequence[Tensor] | Tensor) -> tuple[Tensor, list[tuple[int, int]]]:
        if isinstance(images, Tensor) and images.ndim == 4:
            images = list(images)
        sizes = [(int(i.shape[-2]), int(i.shape[-1])) for i in images]
        d = self.size_divisible
        px = -(-max(s[0] for s in sizes) // d) * d
        py = -(-max(s[1] for s in sizes) // d) * d
        batch = images[0].new_zeros((len(images), images[0].shape[0], px, py))
        for k, image in enumerate(images):
            batch[k, :, : image.shape[-2], : image.shape[-1]] = image
        return batch, sizes

    def _run(self, batch: Tensor, features: bool) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        inner = _inner(self.network)
        if features:
            inner.return_features = True
        try:
            out = self.network(batch)
        finally:
            if features:
                inner.return_features = False
        n = len(self.strides)
        return list(out[:n]), list(out[n : 2 * n]), list(out[2 * n :])

    def _select(self, cls_maps: list[Tensor], box_maps: list[Tensor], k: int, size: tuple[int, int]) -> dict:
        points = fcos_points([m.shape[2:] for m in cls_maps], self.strides, cls_maps[0].device)
        all_boxes, all_scores, all_labels = [], [], []
        for level, (c, b) in enumerate(zip(cls_maps, box_maps)):
            cls = c[k].permute(1, 2, 0).reshape(-1, self.num_classes)
            reg = b[k].permute(1, 2, 0).reshape(-1, 5)
            scores = torch.sqrt(torch.sigmoid(cls) * torch.sigmoid(reg[:, 4:5])).reshape(-1)
            keep = torch.nonzero(scores > self.score_thresh).reshape(-1)
            if keep.numel() > self.topk_candidates_per_level:
                keep = keep[scores[keep].topk(self.topk_candidates_per_level).indices]
            idx, labels = keep // self.num_classes, keep % self.num_classes
            stride = torch.full((len(idx),), float(self.strides[level]), device=c.device)
            all_boxes.append(_decode(points[level][idx], reg[idx, :4], stride))
            all_scores.append(scores[keep])
            all_labels.append(labels)
        boxes, scores, labels = torch.cat(all_boxes), torch.cat(all_scores), torch.cat(all_labels)
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, size[0])
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, size[1])
        return self._nms(boxes, scores, labels)

    def _nms(self, boxes: Tensor, scores: Tensor, labels: Tensor, limit: int | None = None) -> dict:
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores, labels = boxes[valid], scores[valid], labels[valid]
        keep = batched_nms(boxes, scores, labels, self.nms_thresh)[: limit or self.detections_per_img]
        return {
            self.target_box_key: boxes[keep],
            self.target_label_key: labels[keep],
            self.pred_score_key: scores[keep],
        }

    def detect_batch(self, images: Sequence[Tensor] | Tensor) -> list[dict[str, Tensor]]:
        """Boxes of each image, the network run once on the padded batch."""
        batch, sizes = self._batch(images)
        cls_maps, box_maps, _ = self._run(batch, features=False)
        return [self._select(cls_maps, box_maps, k, size) for k, size in enumerate(sizes)]

    def tile_origins(self, size: Sequence[int]) -> list[tuple[int, int]]:
        """Top-left corners ``(x, y)`` of the tiles covering an image of ``size`` ``(X, Y)`` (:meth:`set_tiling`)."""
        if self.tile_size is None:
            return [(0, 0)]
        origins = []
        for axis in range(2):
            tile, extent = self.tile_size[axis], int(size[axis])
            step = max(1, int(tile * (1.0 - self.overlap)))
            starts = list(range(0, max(extent - tile, 0) + 1, step))
            if starts[-1] + tile < extent:
                starts.append(extent - tile)
            origins.append(starts)
        return [(x, y) for x in origins[0] for y in origins[1]]

    def detect_tiled(self, image: Tensor, progress: bool = False) -> dict[str, Tensor]:
        """Boxes of one ``(C, X, Y)`` image, run tile by tile and merged by NMS (:meth:`set_tiling`)."""
        origins = self.tile_origins(image.shape[1:])
        merger = TileMerger(self)
        iterator: Any = origins
        if progress:
            from tqdm import tqdm

            iterator = tqdm(origins, desc="tiles", leave=False)
        assert self.tile_size is not None or len(origins) == 1
        tx, ty = self.tile_size or (image.shape[1], image.shape[2])
        for x, y in iterator:
            merger.add(self.detect_batch([image[:, x : x + tx, y : y + ty]])[0], (x, y))
        return merger.result()

    # ---- forward --------------------------------------------------------------------------------------------

    def forward(
        self,
        images: Sequence[Tensor] | Tensor,
        targets: Sequence[dict[str, Tensor]] | None = None,
        use_inferer: bool = False,
        return_features: bool = False,
    ) -> Any:
        """Losses (train mode, with ``targets``) or per-image detections (eval mode); see the class docstring.

        In train mode ``targets`` may be shorter than ``images``: the images past ``len(targets)`` (unlabelled
        target-domain images of the same batch) get no detection loss, only their features and head maps.

        Raises:
            ValueError: train mode without targets.
        """
        if self.training:
            if targets is None:
                raise ValueError("FCOSDetector needs targets in train mode (or call .eval() to detect)")
            batch, _ = self._batch(images)
            cls_maps, box_maps, features = self._run(batch, features=return_features)
            n = len(targets)  # images after the first n are unlabelled (target domain): no detection loss
            labelled_cls, labelled_box = [m[:n] for m in cls_maps], [m[:n] for m in box_maps]
            points = fcos_points([m.shape[2:] for m in cls_maps], self.strides, batch.device)
            assigned = [
                fcos_targets(
                    points,
                    self.strides,
                    t[self.target_box_key].reshape(-1, 4),
                    t[self.target_label_key].reshape(-1),
                    self.scale_ranges,
                    self.center_sampling_radius,
                )  # fmt: skip
                for t in targets
            ]
            losses: dict[str, Any] = fcos_losses(labelled_cls, labelled_box, assigned, points, self.strides)
            if return_features:
                losses["features"] = features
                losses["head"] = (cls_maps, box_maps)
            return losses
        if use_inferer and self.tile_size is not None:
            if isinstance(images, Tensor) and images.ndim == 4:
                images = list(images)
            return [self.detect_tiled(image) for image in images]
        return self.detect_batch(images)


class TileMerger:
    """Collects the boxes of tiles shifted to the whole image and merges them by the detector's NMS.

    Args:
        detector: the :class:`FCOSDetector` (its keys, NMS threshold and ``detections_per_img``).
        max_detections: boxes kept after the merge (default the detector's ``detections_per_img``; a whole slide
            holds many more figures than a tile, so :func:`common.engines.detect_whole_slide` keeps them all).
    """

    def __init__(self, detector: FCOSDetector, max_detections: int | None = None) -> None:
        self.detector = detector
        self.max_detections = max_detections
        self.boxes: list[Tensor] = []
        self.scores: list[Tensor] = []
        self.labels: list[Tensor] = []

    def add(self, found: dict[str, Tensor], origin: Sequence[int]) -> None:
        """Add one tile's detections, whose boxes are relative to the tile's ``origin`` ``(x, y)``."""
        shift = torch.tensor([origin[0], origin[1], origin[0], origin[1]], dtype=torch.float32)
        self.boxes.append(found[self.detector.target_box_key].detach().float().cpu() + shift)
        self.scores.append(found[self.detector.pred_score_key].detach().float().cpu())
        self.labels.append(found[self.detector.target_label_key].detach().cpu())

    def result(self) -> dict[str, Tensor]:
        """The merged detections ``{"box", "label", "label_scores"}`` (CPU)."""
        if not self.boxes:
            d = self.detector
            return {d.target_box_key: torch.zeros((0, 4)), d.target_label_key: torch.zeros(0, dtype=torch.long),
                    d.pred_score_key: torch.zeros(0)}  # fmt: skip
        return self.detector._nms(torch.cat(self.boxes), torch.cat(self.scores), torch.cat(self.labels),
                                  self.max_detections)  # fmt: skip
