"""RetinaNet with a Swin Transformer or ResNet FPN backbone for calcification cluster detection (Cantone et al.).

The paper benchmarks ImageNet-pretrained backbones under COCO-pretrained heads on 1280x800 mammograms; its best
RetinaNet uses Swin-B with patch size 4. Here MONAI's detection stack is used as it is: :func:`retinanet` builds
MONAI's 2D ``RetinaNet`` over :class:`SwinFPNBackbone` (MONAI's ``SwinTransformer`` + ``FeaturePyramidNetwork``) or
:func:`resnet_fpn_backbone` (MONAI's ResNet + ``resnet_fpn_feature_extractor``) and returns the network alone, so that
a bundle exports only the network, as model-zoo's lung_nodule_ct_detection does; :func:`retinanet_detector` wraps it
into MONAI's ``RetinaNetDetector`` (matcher, sampler, losses, box selection, sliding window) for training and
inference.

Swin sizes: the paper's Table 1 (its Swin parameters) is missing from the text; :data:`SWIN_SIZES` holds Liu et al.
2021's Swin-T and Swin-B values.

Export: the ResNet network scripts (``torch.jit.script``, MONAI's default ``ckpt_export``). MONAI's Swin does not
script (TorchScript compiles the 3D branch of its patch embedding, which indexes the 2D patch size out of range, and it
calls einops and numpy), so a Swin network is exported with ``torch.jit.trace`` at the inference patch size: build it
with ``use_list_output=True`` (a trace cannot return the dict of lists) and run ``ckpt_export`` with
``--use_trace True --input_shape [1, 3, H, W]``. The trace bakes in the shifted-window masks of that size, so
inference with it must use the sliding-window inferer with ``roi_size=(H, W)``; any batch size works.

No weights are downloaded: every network starts random and ``weights_path`` reads a local backbone checkpoint.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.apps.detection.networks.retinanet_detector import RetinaNetDetector
from monai.apps.detection.networks.retinanet_network import RetinaNet, resnet_fpn_feature_extractor
from monai.apps.detection.utils.anchor_utils import AnchorGenerator
from monai.losses import FocalLoss
from monai.networks.blocks.backbone_fpn_utils import BackboneWithFPN
from monai.networks.blocks.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool
from monai.networks.nets import resnet
from monai.networks.nets.swin_unetr import SwinTransformer, compute_mask, get_window_size
from torch import Tensor, nn

from .skin_classifiers import load_pretrained_weights

__all__ = [
    "ANCHOR_SIZES",
    "ASPECT_RATIOS",
    "SCHEDULES",
    "SWIN_SIZES",
    "SwinFPNBackbone",
    "make_anchor_generator",
    "make_optimizer_and_scheduler",
    "resnet_fpn_backbone",
    "retinanet",
    "retinanet_detector",
]

SWIN_SIZES: dict[str, dict[str, Any]] = {
    "swin_t": {"embed_dim": 96, "depths": (2, 2, 6, 2), "num_heads": (3, 6, 12, 24), "window_size": 7, "patch_size": 4},
    "swin_b": {
        "embed_dim": 128,
        "depths": (2, 2, 18, 2),
        "num_heads": (4, 8, 16, 32),
        "window_size": 7,
        "patch_size": 4,
    },
    # not in the paper, for CPU samples; MONAI's SwinTransformer needs 4 stages, stage 3 keeps a shifted window
    "swin_mini": {
        "embed_dim": 24,
        "depths": (1, 1, 2, 1),
        "num_heads": (1, 2, 4, 8),
        "window_size": 7,
        "patch_size": 4,
    },
}
"""Swin backbone sizes by name: embedding width ``C``, blocks and attention heads per stage, window, patch size.

The paper's Table 1 (its Swin parameters) is missing from the text, so ``swin_t`` and ``swin_b`` hold Liu et al.
2021's values (window 7 of the 224x224 ImageNet pre-training). Patch size 4 is the paper's point: the stride-4 patch
embedding keeps lesions of a few pixels. ``swin_mini`` is not in the paper; it keeps CPU samples and tests fast.
"""

ANCHOR_SIZES: tuple[tuple[int, ...], ...] = ((16, 24), (32, 48), (64, 96), (128, 192))
"""Anchor sides per FPN level (strides 8, 16, 32 and the max-pool level 64): 2 and 3 times the level's stride.

A decision, as the paper gives no head configuration: calcification clusters are about 16..128 px at 1280x800, so
the anchors span 16..192 px, half the usual RetinaNet sizes (4 x stride and up) that target COCO objects.
"""

ASPECT_RATIOS: tuple[float, ...] = (0.5, 1.0, 2.0)
"""Anchor height:width ratios (MONAI's ``w:h = 1:ratio``, same area), shared by every level: clusters are roughly
round or elongated along a duct; with :data:`ANCHOR_SIZES` that is 6 anchors per location."""

SCHEDULES: dict[str, dict[str, Any]] = {
    "resnet50": {"optimizer": "SGD", "lr": 7.81e-5, "epochs": 30, "gamma": 0.2, "milestones": [6, 12, 18, 24]},
    "resnet101": {"optimizer": "SGD", "lr": 7.81e-5, "epochs": 30, "gamma": 0.2, "milestones": [6, 12, 18, 24]},
    "swin_t": {"optimizer": "AdamW", "lr": 1.25e-5, "epochs": 30, "gamma": None, "milestones": []},
    "swin_b": {"optimizer": "AdamW", "lr": 1.25e-5, "epochs": 30, "gamma": None, "milestones": []},
}
"""The RetinaNet rows of the paper's Table 2 by backbone: optimizer, learning rate, epochs, decay ``gamma`` and the
epochs after which the rate is multiplied by ``gamma`` (Swin rows: no decay, a constant rate)."""

_RESNET_LAYOUTS = {
    18: ("basic", [2, 2, 2, 2]),
    34: ("basic", [3, 4, 6, 3]),
    50: ("bottleneck", [3, 4, 6, 3]),
    101: ("bottleneck", [3, 4, 23, 3]),
    152: ("bottleneck", [3, 8, 36, 3]),
}
_BACKBONES = (*SWIN_SIZES, *(f"resnet{d}" for d in _RESNET_LAYOUTS))


class SwinFPNBackbone(nn.Module):
    """MONAI's 2D ``SwinTransformer`` whose stage 2..4 outputs (strides 8, 16, 32) feed a ``FeaturePyramidNetwork``.

    The returned maps are the outputs of Swin stages 2, 3 and 4 (``2C``, ``4C`` and ``8C`` channels), each layer
    normalised, before the next patch merging, as in Swin's detection code. MONAI's ``SwinTransformer.forward``
    returns the maps after each stage's patch merging instead, whose stride-32 map would skip the last stage's blocks,
    so the stages are run here one by one (the unused last merging is removed). The FPN turns them into
    ``fpn_channels`` maps, plus a stride-64 max-pool level when ``extra_pool`` is set; the output is an ordered dict,
    highest resolution first, as MONAI's ``RetinaNet`` expects of a ``feature_extractor``.

    Input height and width must be multiples of 32: Swin itself would pad, but the FPN maps must be exactly
    ``H / stride`` for MONAI's anchor generator, which infers each level's stride as ``H // map_size``. With the
    max-pool level the anchors of that level line up only for multiples of 64, hence :attr:`size_divisible` (64), which
    :func:`retinanet` gives to ``RetinaNet`` so that ``RetinaNetDetector`` pads every image to it.

    Args:
        in_channels: image channels (3: the grey mammogram replicated, as the paper does for ImageNet weights).
        embed_dim: Swin embedding width ``C``.
        depths: Swin blocks per stage (4 stages).
        num_heads: attention heads per stage.
        window_size: attention window side.
        patch_size: patch embedding side (4 keeps tiny lesions).
        fpn_channels: channels of every FPN level (a multiple of 8: the RetinaNet heads' group norm).
        extra_pool: add the stride-64 ``LastLevelMaxPool`` level.
        drop_path_rate: stochastic depth rate of the Swin blocks.
        use_checkpoint: gradient checkpointing in the Swin blocks (memory for time).

    Attributes:
        out_channels: ``fpn_channels`` (read by ``RetinaNet``).
        strides: stride of each output level.
        size_divisible: the input side multiple that keeps every level aligned with its anchors.
    """

    def __init__(
        self,
        in_channels: int = 3,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 7,
        patch_size: int = 4,
        fpn_channels: int = 256,
        extra_pool: bool = True,
        drop_path_rate: float = 0.0,
        use_checkpoint: bool = False,
    ):
        super().__init__()
        if len(depths) != 4 or len(num_heads) != 4:
            raise ValueError(f"MONAI's SwinTransformer has 4 stages; got depths={depths}, num_heads={num_heads}")
        self.swin = SwinTransformer(
            in_chans=in_channels,
            embed_dim=embed_dim,
            window_size=(window_size,) * 2,
            patch_size=(patch_size,) * 2,
            depths=depths,
            num_heads=num_heads,
            drop_path_rate=drop_path_rate,
            use_checkpoint=use_checkpoint,
            spatial_dims=2,
        )
        # the last stage's output is used at its own stride: its merging (to stride 64) would never train
        self.swin.layers4[0].downsample = None
        channels = [embed_dim * 2**i for i in (1, 2, 3)]
        self.norms = nn.ModuleList(nn.LayerNorm(c) for c in channels)
        self.fpn = FeaturePyramidNetwork(
            spatial_dims=2,
            in_channels_list=channels,
            out_channels=fpn_channels,
            extra_blocks=LastLevelMaxPool(2) if extra_pool else None,
        )
        self.out_channels = fpn_channels
        self.strides = tuple(patch_size * 2**i for i in (1, 2, 3)) + ((patch_size * 16,) if extra_pool else ())
        self.size_divisible = self.strides[-1]
        self._min_multiple = patch_size * 8

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """Feature maps ``{"0": stride 8, "1": stride 16, "2": stride 32[, "pool": stride 64]}``.

        Raises:
            ValueError: the image height or width is not a multiple of 32.
        """
        size = tuple(images.shape[2:])
        if any(s % self._min_multiple for s in size):
            raise ValueError(
                f"SwinFPNBackbone needs height and width that are multiples of {self._min_multiple}, got {size}: "
                "pad or resize the image (RetinaNetDetector pads to network.size_divisible)"
            )
        x = self.swin.pos_drop(self.swin.patch_embed(images)).permute(0, 2, 3, 1)  # Swin blocks are channels-last
        features: dict[str, Tensor] = OrderedDict()
        stages = (self.swin.layers1[0], self.swin.layers2[0], self.swin.layers3[0], self.swin.layers4[0])
        for i, stage in enumerate(stages):
            x = _run_swin_stage(stage, x)
            if i >= 1:
                features[str(i - 1)] = self.norms[i - 1](x).permute(0, 3, 1, 2).contiguous()
            if stage.downsample is not None:
                x = stage.downsample(x)
        return self.fpn(features)


def _run_swin_stage(stage: nn.Module, x: Tensor) -> Tensor:
    """The blocks of one MONAI ``BasicLayer`` (its 2D ``forward`` without the patch merging), channels-last."""
    h, w = x.shape[1], x.shape[2]
    window_size, shift_size = get_window_size((h, w), stage.window_size, stage.shift_size)
    padded = [-(-h // window_size[0]) * window_size[0], -(-w // window_size[1]) * window_size[1]]
    attn_mask = compute_mask(padded, window_size, shift_size, x.device)
    if not torch.jit.is_scripting():
        if torch.onnx.is_in_onnx_export():
            # the mask depends on the (fixed) input size only: stored as a constant, because the exporter writes
            # compute_mask's in-place slice assignments into a graph that computes another mask
            attn_mask = torch.from_numpy(attn_mask.detach().cpu().numpy()).to(x.device)
    for block in stage.blocks:
        x = block(x, attn_mask)
    return x


def resnet_fpn_backbone(
    depth: int = 50,
    in_channels: int = 3,
    returned_layers: Sequence[int] = (1, 2, 3),
    spatial_dims: int = 2,
    weights_path: str | Path | None = None,
    fpn_channels: int = 256,
) -> BackboneWithFPN:
    """MONAI's ResNet of ``depth`` with an FPN, via MONAI's ``resnet_fpn_feature_extractor``.

    The ResNet is the torchvision layout (7x7 stride-2 stem, max pool, bias-free projection shortcuts), so layer
    ``k`` has stride ``2 ** (k + 1)`` and a local torchvision-style checkpoint loads by name. The output has
    ``len(returned_layers) + 1`` levels (MONAI always appends a max-pool level). Every layer stays trainable (the
    paper fine-tunes the whole detector).

    Args:
        depth: 18, 34, 50, 101 or 152.
        in_channels: image channels.
        returned_layers: ResNet layers (1..4) fed to the FPN; MONAI's default ``(1, 2, 3)`` gives strides 4..32,
            ``(2, 3, 4)`` the RetinaNet paper's 8..64.
        spatial_dims: 2 or 3.
        weights_path: optional local ResNet state dict (matching names and shapes are copied; nothing is downloaded).
        fpn_channels: FPN width; MONAI's extractor builds 256 and another width replaces its FPN.

    Raises:
        ValueError: unsupported ``depth``.
    """
    if depth not in _RESNET_LAYOUTS:
        raise ValueError(f"unsupported ResNet depth {depth}; choose one of {sorted(_RESNET_LAYOUTS)}")
    block, layers = _RESNET_LAYOUTS[depth]
    backbone = resnet.ResNet(
        block,
        layers,
        resnet.get_inplanes(),
        spatial_dims=spatial_dims,
        n_input_channels=in_channels,
        conv1_t_size=7,
        conv1_t_stride=2,  # MONAI's default stride 1 would make every level twice finer than torchvision's
        bias_downsample=False,
        feed_forward=False,
    )
    if weights_path is not None:
        load_pretrained_weights(backbone, weights_path)
    extractor = resnet_fpn_feature_extractor(backbone, spatial_dims, returned_layers=returned_layers)
    if fpn_channels != extractor.out_channels:
        in_channels_list = [block.in_channels for block in extractor.fpn.inner_blocks]
        extractor.fpn = FeaturePyramidNetwork(
            spatial_dims, in_channels_list, fpn_channels, LastLevelMaxPool(spatial_dims)
        )
        extractor.out_channels = fpn_channels
    return extractor


def make_anchor_generator(
    anchor_sizes: Sequence[Sequence[int]] = ANCHOR_SIZES, aspect_ratios: Sequence[float] = ASPECT_RATIOS
) -> AnchorGenerator:
    """MONAI ``AnchorGenerator`` (``ij`` indexing) with ``anchor_sizes[level]`` x ``aspect_ratios`` at every level.

    The same arguments must build the network (:func:`retinanet`), as they set its anchors per location.
    """
    return AnchorGenerator(
        sizes=tuple(tuple(s) for s in anchor_sizes),
        aspect_ratios=(tuple(aspect_ratios),) * len(anchor_sizes),
        indexing="ij",
    )


def retinanet(
    backbone: str = "swin_mini",
    num_classes: int = 1,
    in_channels: int = 3,
    anchor_sizes: Sequence[Sequence[int]] = ANCHOR_SIZES,
    aspect_ratios: Sequence[float] = ASPECT_RATIOS,
    fpn_channels: int | None = None,
    weights_path: str | Path | None = None,
    use_list_output: bool = False,
) -> RetinaNet:
    """MONAI 2D ``RetinaNet`` over a Swin or ResNet FPN backbone with levels at strides 8, 16, 32 and 64.

    Both backbone families give the same four levels (ResNet layers 2..4 + max pool, as the RetinaNet paper's C3..C5
    + P6), so the anchors and heads are the same whatever the backbone, as in the paper's comparison. The network
    alone is returned; :func:`retinanet_detector` (or a bundle config) wraps it in ``RetinaNetDetector`` with
    :func:`make_anchor_generator` built from the same ``anchor_sizes`` and ``aspect_ratios``.

    Args:
        backbone: ``swin_mini``, ``swin_t``, ``swin_b`` (:data:`SWIN_SIZES`) or ``resnet18/34/50/101/152``.
        num_classes: foreground classes (1: calcification cluster).
        in_channels: image channels.
        anchor_sizes: anchor sides per level (4 levels), :data:`ANCHOR_SIZES` by default.
        aspect_ratios: anchor ratios shared by the levels.
        fpn_channels: FPN and head width; default 64 for ``swin_mini``, 256 (RetinaNet's) otherwise.
        weights_path: optional local backbone checkpoint (MONAI ``SwinTransformer`` or ResNet names), copied where
            names and shapes match.
        use_list_output: return the head maps as a list (classification maps, then box regression maps) instead of a
            dict; needed for a ``torch.jit.trace`` export (the Swin networks), accepted by ``RetinaNetDetector``.

    Raises:
        ValueError: unknown backbone, ``fpn_channels`` not a multiple of 8, or ``anchor_sizes`` not one entry per
            level with the same count each.
    """
    if backbone not in _BACKBONES:
        raise ValueError(f"unknown backbone '{backbone}'; choose one of {list(_BACKBONES)}")
    if fpn_channels is None:
        fpn_channels = 64 if backbone == "swin_mini" else 256
    if fpn_channels % 8:
        raise ValueError(f"fpn_channels must be a multiple of 8 (the heads' GroupNorm(8)), got {fpn_channels}")
    if len(anchor_sizes) != 4 or len({len(s) for s in anchor_sizes}) != 1:
        raise ValueError(f"anchor_sizes needs 4 levels (strides 8..64) with as many sizes each, got {anchor_sizes}")
    if backbone in SWIN_SIZES:
        extractor: nn.Module = SwinFPNBackbone(in_channels, **SWIN_SIZES[backbone], fpn_channels=fpn_channels)
        if weights_path is not None:
            load_pretrained_weights(extractor.swin, weights_path)
    else:
        extractor = resnet_fpn_backbone(
            int(backbone.removeprefix("resnet")), in_channels, (2, 3, 4), 2, weights_path, fpn_channels
        )
    return RetinaNet(
        spatial_dims=2,
        num_classes=num_classes,
        num_anchors=len(anchor_sizes[0]) * len(aspect_ratios),
        feature_extractor=extractor,
        size_divisible=64,  # the stride of the max-pool level, so that its anchors line up
        use_list_output=use_list_output,
    )


def retinanet_detector(
    network: nn.Module,
    anchor_generator: AnchorGenerator,
    *,
    cls_loss: str = "focal",
    num_candidates: int = 4,
    center_in_gt: bool = False,
    batch_size_per_image: int = 64,
    positive_fraction: float = 0.3,
    pool_size: float = 20,
    min_neg: int = 16,
    box_coder_weights: Sequence[float] | None = None,
    box_key: str = "box",
    label_key: str = "label",
    score_thresh: float = 0.05,
    topk_candidates_per_level: int = 1000,
    nms_thresh: float = 0.5,
    detections_per_img: int = 100,
    roi_size: Sequence[int] | int | None = None,
    overlap: float = 0.25,
    sw_batch_size: int = 1,
    mode: str = "constant",
    sw_device: str | torch.device | None = None,
    device: str | torch.device | None = None,
    **detector_kwargs: Any,
) -> RetinaNetDetector:
    """MONAI ``RetinaNetDetector`` around ``network``, set up as model-zoo's lung_nodule_ct_detection does.

    Training: ATSS matcher, hard-negative sampler (model-zoo's values), focal loss (the RetinaNet of the paper; or
    ``"bce"``, MONAI's default) and MONAI's smooth-L1 box loss on encoded boxes. Inference: box selection with
    MMDetection's RetinaNet test values (the paper's framework, inferred; it gives none), a low score threshold so
    that a FROC can sweep it, and a sliding-window inferer when ``roi_size`` is given (images larger than the
    training patch, or a traced network).

    Args:
        network: a MONAI ``RetinaNet`` (from :func:`retinanet`) or its TorchScript module.
        anchor_generator: :func:`make_anchor_generator` with the network's anchor arguments.
        cls_loss: ``"focal"`` (gamma 2) or ``"bce"``.
        num_candidates: ATSS candidates per level.
        center_in_gt: ATSS requires anchor centres inside the box (False suits small objects).
        batch_size_per_image: sampled anchors per image.
        positive_fraction: positive share of the sampled anchors.
        pool_size: hard negatives are drawn from ``pool_size`` times as many top-scored negatives.
        min_neg: minimum negatives per image (normal images have no positives).
        box_coder_weights: ``BoxCoder`` weights (4 values); MONAI's (1, 1, 1, 1) when None.
        box_key: target and output box key.
        label_key: target and output label key (scores under ``label_key + "_scores"``).
        score_thresh: boxes scoring less are dropped.
        topk_candidates_per_level: boxes kept per level before NMS.
        nms_thresh: NMS IoU threshold.
        detections_per_img: boxes kept per image.
        roi_size: sliding-window patch (a multiple of ``network.size_divisible``); None: whole-image inference.
        overlap: sliding-window overlap.
        sw_batch_size: patches per network call.
        mode: window blending, ``"constant"`` or ``"gaussian"``.
        sw_device: device of the patches.
        device: device where the head maps are stitched (``"cpu"`` saves GPU memory).
        **detector_kwargs: passed to ``RetinaNetDetector`` (``spatial_dims``, ``num_classes``, ``size_divisible``
            for a TorchScript network, which does not carry them; ``debug``).

    Raises:
        ValueError: unknown ``cls_loss``.
    """
    if cls_loss not in ("focal", "bce"):
        raise ValueError(f"cls_loss must be 'focal' or 'bce', got '{cls_loss}'")
    detector = RetinaNetDetector(network=network, anchor_generator=anchor_generator, **detector_kwargs)
    detector.set_atss_matcher(num_candidates=num_candidates, center_in_gt=center_in_gt)
    detector.set_hard_negative_sampler(
        batch_size_per_image=batch_size_per_image,
        positive_fraction=positive_fraction,
        min_neg=min_neg,
        pool_size=pool_size,
    )
    if cls_loss == "focal":
        detector.set_cls_loss(FocalLoss(gamma=2.0, reduction="mean"))
    if box_coder_weights is not None:
        detector.set_box_coder_weights(tuple(box_coder_weights))
    detector.set_target_keys(box_key=box_key, label_key=label_key)
    detector.set_box_selector_parameters(
        score_thresh=score_thresh,
        topk_candidates_per_level=topk_candidates_per_level,
        nms_thresh=nms_thresh,
        detections_per_img=detections_per_img,
    )
    if roi_size is not None:
        detector.set_sliding_window_inferer(
            roi_size=roi_size,
            overlap=overlap,
            sw_batch_size=sw_batch_size,
            mode=mode,
            sw_device=sw_device,
            device=device,
        )
    return detector


def make_optimizer_and_scheduler(
    network: nn.Module,
    schedule: str | Mapping[str, Any],
    momentum: float = 0.9,
    weight_decay: float | None = None,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """Optimizer and per-epoch scheduler of a :data:`SCHEDULES` row (or a dict with the same keys).

    The scheduler is a ``MultiStepLR`` (``gamma`` at ``milestones``, counted in epochs: call ``step()`` once per
    epoch) or, without milestones, a ``ConstantLR`` that keeps the rate. The paper gives no momentum, weight decay or
    warm-up: momentum 0.9 and weight decay 1e-4 (SGD) or 0.05 (AdamW) are MMDetection's RetinaNet and Swin values.

    Args:
        network: the network whose trainable parameters are optimised.
        schedule: a key of :data:`SCHEDULES` or a dict with ``optimizer`` (``SGD``/``AdamW``), ``lr``, ``gamma`` and
            ``milestones``.
        momentum: SGD momentum.
        weight_decay: None for the optimizer's default above.

    Raises:
        ValueError: unknown schedule name or optimizer, or milestones without a ``gamma``.
    """
    if isinstance(schedule, str):
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule '{schedule}'; choose one of {sorted(SCHEDULES)}")
        schedule = SCHEDULES[schedule]
    params = [p for p in network.parameters() if p.requires_grad]
    name = schedule["optimizer"]
    if name == "SGD":
        wd = 1e-4 if weight_decay is None else weight_decay
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            params, lr=schedule["lr"], momentum=momentum, weight_decay=wd
        )
    elif name == "AdamW":
        wd = 0.05 if weight_decay is None else weight_decay
        optimizer = torch.optim.AdamW(params, lr=schedule["lr"], weight_decay=wd)
    else:
        raise ValueError(f"unknown optimizer '{name}'; choose 'SGD' or 'AdamW'")
    milestones = list(schedule.get("milestones") or [])
    if milestones:
        if schedule.get("gamma") is None:
            raise ValueError(f"schedule has milestones {milestones} but no gamma")
        scheduler: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=milestones, gamma=schedule["gamma"]
        )
    else:
        scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    return optimizer, scheduler
