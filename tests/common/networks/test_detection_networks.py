"""RetinaNet for calcification clusters: Swin/ResNet FPN backbones, detector losses and boxes, export, schedules."""

from __future__ import annotations

import math

import pytest
import torch

from common.networks import (
    ANCHOR_SIZES,
    ASPECT_RATIOS,
    SCHEDULES,
    SWIN_SIZES,
    SwinFPNBackbone,
    make_anchor_generator,
    make_optimizer_and_scheduler,
    resnet_fpn_backbone,
    retinanet,
    retinanet_detector,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny inputs: one intra-op thread is faster than two on a shared, busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _targets():
    """One cluster on the first image, none on the second (a normal mammogram)."""
    return [
        {"box": torch.tensor([[30.0, 40.0, 60.0, 64.0]]), "label": torch.tensor([0])},
        {"box": torch.zeros(0, 4), "label": torch.zeros(0, dtype=torch.long)},
    ]


def test_swin_sizes_are_liu_et_al_with_patch_4():
    assert SWIN_SIZES["swin_t"] == {
        "embed_dim": 96, "depths": (2, 2, 6, 2), "num_heads": (3, 6, 12, 24), "window_size": 7, "patch_size": 4
    }  # fmt: skip
    assert SWIN_SIZES["swin_b"]["embed_dim"] == 128 and SWIN_SIZES["swin_b"]["depths"] == (2, 2, 18, 2)
    assert SWIN_SIZES["swin_b"]["num_heads"] == (4, 8, 16, 32)
    assert all(size["patch_size"] == 4 and size["window_size"] == 7 for size in SWIN_SIZES.values())


def test_swin_fpn_backbone_strides_channels_and_every_parameter_trains():
    torch.manual_seed(0)
    backbone = SwinFPNBackbone(3, **SWIN_SIZES["swin_mini"], fpn_channels=32)
    assert backbone.out_channels == 32 and backbone.strides == (8, 16, 32, 64) and backbone.size_divisible == 64
    features = backbone(torch.randn(2, 3, 128, 96))
    assert list(features) == ["0", "1", "2", "pool"]
    for stride, feature in zip((8, 16, 32), list(features.values())[:3]):
        assert feature.shape == (2, 32, 128 // stride, 96 // stride)
    assert features["pool"].shape == (2, 32, 2, 2)  # max pool (kernel 1, stride 2) of the 4x3 stride-32 map
    # the stride-32 map is the last stage's output: no parameter is left without a gradient (DDP needs that)
    sum(f.square().mean() for f in features.values()).backward()
    assert all(p.grad is not None for p in backbone.parameters())

    no_pool = SwinFPNBackbone(1, **SWIN_SIZES["swin_mini"], fpn_channels=16, extra_pool=False)
    assert no_pool.size_divisible == 32
    assert [f.shape[-1] for f in no_pool(torch.randn(1, 1, 64, 64)).values()] == [8, 4, 2]


def test_non_multiple_of_32_input_raises_a_clear_error():
    backbone = SwinFPNBackbone(3, **SWIN_SIZES["swin_mini"], fpn_channels=16)
    with pytest.raises(ValueError, match="multiples of 32"):
        backbone(torch.randn(1, 3, 100, 96))
    with pytest.raises(ValueError, match="4 stages"):
        SwinFPNBackbone(3, depths=(2, 2, 2), num_heads=(1, 2, 4))


def test_resnet_fpn_backbone_strides_widths_and_local_weights(tmp_path):
    torch.manual_seed(0)
    extractor = resnet_fpn_backbone(depth=18, in_channels=1)
    assert extractor.out_channels == 256  # MONAI's extractor width
    features = extractor(torch.randn(1, 1, 64, 64))
    assert [f.shape[-1] for f in features.values()] == [16, 8, 4, 2]  # layers 1..3 at strides 4..16 + pool
    narrow = resnet_fpn_backbone(depth=18, in_channels=1, returned_layers=(2, 3, 4), fpn_channels=32)
    assert [tuple(f.shape[1:]) for f in narrow(torch.randn(1, 1, 64, 64)).values()] == [
        (32, 8, 8), (32, 4, 4), (32, 2, 2), (32, 1, 1)
    ]  # fmt: skip
    path = tmp_path / "resnet18.pt"
    torch.save(extractor.body.state_dict(), path)  # the body keeps the ResNet's names
    loaded = resnet_fpn_backbone(depth=18, in_channels=1, weights_path=path)
    assert torch.equal(loaded.body.layer3[0].conv1.weight, extractor.body.layer3[0].conv1.weight)
    with pytest.raises(ValueError, match="unsupported ResNet depth"):
        resnet_fpn_backbone(depth=20)


def test_anchor_generator_matches_the_network():
    generator = make_anchor_generator()
    network = retinanet("resnet18", fpn_channels=16)
    assert generator.num_anchors_per_location() == [len(ANCHOR_SIZES[0]) * len(ASPECT_RATIOS)] * 4
    assert network.num_anchors == 6 and network.size_divisible == (64, 64)
    sides = torch.cat(generator.cell_anchors)[:, 2:] * 2  # zero-centred anchors: half sides
    assert 8 <= sides.min() and sides.max() <= 300  # clusters of about 16..128 px (ratios stretch the sides)
    small = make_anchor_generator(((8,), (16,), (32,), (64,)), (1.0,))
    assert small.num_anchors_per_location() == [1] * 4


def test_retinanet_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown backbone"):
        retinanet("convnext_t")
    with pytest.raises(ValueError, match="multiple of 8"):
        retinanet("swin_mini", fpn_channels=20)
    with pytest.raises(ValueError, match="4 levels"):
        retinanet("swin_mini", anchor_sizes=((16,), (32,), (64,)))
    network = retinanet("swin_mini", fpn_channels=16)
    with pytest.raises(ValueError, match="cls_loss"):
        retinanet_detector(network, make_anchor_generator(), cls_loss="dice")


@pytest.mark.parametrize("backbone", ["swin_mini", "resnet18"])
def test_detector_trains_on_positive_and_normal_images_and_predicts(backbone: str):
    torch.manual_seed(0)
    network = retinanet(backbone, num_classes=1, in_channels=3, fpn_channels=32)
    detector = retinanet_detector(network, make_anchor_generator(), score_thresh=0.0, detections_per_img=10)
    optimizer, _ = make_optimizer_and_scheduler(
        network, {"optimizer": "SGD", "lr": 0.01, "gamma": None, "milestones": []}
    )
    head_before = network.classification_head.cls_logits.weight.detach().clone()
    backbone_before = next(network.feature_extractor.parameters()).detach().clone()

    detector.train()
    losses = detector([torch.randn(3, 128, 128), torch.randn(3, 128, 128)], _targets())
    assert set(losses) == {"classification", "box_regression"}
    assert all(math.isfinite(v.item()) and v.item() > 0 for v in losses.values())
    optimizer.zero_grad()
    (losses["classification"] + losses["box_regression"]).backward()
    optimizer.step()
    assert not torch.equal(network.classification_head.cls_logits.weight, head_before)
    assert not torch.equal(next(network.feature_extractor.parameters()), backbone_before)

    detector.eval()
    with torch.no_grad():
        results = detector([torch.randn(3, 128, 128), torch.randn(3, 128, 128)])
    assert len(results) == 2
    for result in results:
        assert set(result) == {"box", "label", "label_scores"}
        assert result["box"].shape == (10, 4) and result["label"].shape == result["label_scores"].shape == (10,)


def test_bce_loss_and_box_coder_weights_are_options():
    torch.manual_seed(0)
    network = retinanet("swin_mini", fpn_channels=16)
    detector = retinanet_detector(network, make_anchor_generator(), cls_loss="bce", box_coder_weights=(2, 2, 1, 1))
    assert isinstance(detector.cls_loss_func, torch.nn.BCEWithLogitsLoss)
    assert tuple(detector.box_coder.weights) == (2, 2, 1, 1)
    assert math.isfinite(detector.train()(torch.randn(2, 3, 64, 64), _targets())["classification"].item())


def test_sliding_window_boxes_lie_inside_a_larger_image():
    torch.manual_seed(0)
    network = retinanet("swin_mini", fpn_channels=16)
    detector = retinanet_detector(
        network, make_anchor_generator(), score_thresh=0.0, detections_per_img=50, roi_size=(128, 128), overlap=0.25
    ).eval()
    with torch.no_grad():
        (result,) = detector([torch.randn(3, 256, 192)], use_inferer=True)
    boxes = result["box"]
    assert boxes.shape == (50, 4)
    # MONAI's boxes follow the array axes: (start_0, start_1, end_0, end_1)
    assert (boxes >= 0).all() and (boxes[:, 2] <= 256).all() and (boxes[:, 3] <= 192).all()
    assert (boxes[:, 2:] > boxes[:, :2]).all()
    assert boxes[:, 2].max() > 128 and boxes[:, 3].max() > 128  # boxes come from every window, not the first


def _heads_equal(exported, eager) -> bool:
    return len(exported) == len(eager) and all(torch.allclose(a, b, atol=1e-5) for a, b in zip(exported, eager))


def test_resnet_network_scripts_and_matches_eager():
    torch.manual_seed(0)
    network = retinanet("resnet18", fpn_channels=16).eval()
    scripted = torch.jit.script(network)
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        eager, script = network(x), scripted(x)
    for key in ("classification", "box_regression"):
        assert _heads_equal(script[key], eager[key])


def test_swin_network_does_not_script_but_traces_at_the_patch_size(tmp_path):
    torch.manual_seed(0)
    network = retinanet("swin_mini", fpn_channels=16, use_list_output=True).eval()
    with pytest.raises(Exception):  # noqa: B017 - MONAI's Swin is not TorchScript-compatible (any compiler error)
        torch.jit.script(network)
    with torch.no_grad():
        traced = torch.jit.trace(network, torch.randn(1, 3, 128, 128))
    path = tmp_path / "model.ts"
    torch.jit.save(traced, str(path))
    traced = torch.jit.load(str(path))
    x = torch.randn(2, 3, 128, 128)  # another batch size than the trace's
    with torch.no_grad():
        assert _heads_equal(traced(x), network(x))
        # the bundle's inference path over the exported network: sliding windows of the traced size
        detector = retinanet_detector(
            traced, make_anchor_generator(), score_thresh=0.0, detections_per_img=5, roi_size=(128, 128),
            spatial_dims=2, num_classes=1, size_divisible=64,
        ).eval()  # fmt: skip
        (result,) = detector([torch.randn(3, 256, 192)], use_inferer=True)
    assert result["box"].shape == (5, 4)


def test_schedules_are_table_2_and_build_optimizers():
    assert SCHEDULES["resnet50"] == {
        "optimizer": "SGD", "lr": 7.81e-5, "epochs": 30, "gamma": 0.2, "milestones": [6, 12, 18, 24]
    }  # fmt: skip
    assert SCHEDULES["resnet101"] == SCHEDULES["resnet50"]
    assert SCHEDULES["swin_t"] == {"optimizer": "AdamW", "lr": 1.25e-5, "epochs": 30, "gamma": None, "milestones": []}
    assert SCHEDULES["swin_b"] == SCHEDULES["swin_t"]
    network = torch.nn.Linear(2, 1)

    optimizer, scheduler = make_optimizer_and_scheduler(network, "resnet50")
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.param_groups[0]["lr"] == pytest.approx(7.81e-5)
    assert isinstance(scheduler, torch.optim.lr_scheduler.MultiStepLR)
    assert sorted(scheduler.milestones) == [6, 12, 18, 24] and scheduler.gamma == 0.2
    for _ in range(6):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(7.81e-5 * 0.2)

    optimizer, scheduler = make_optimizer_and_scheduler(network, SCHEDULES["swin_b"], weight_decay=0.01)
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.param_groups[0]["weight_decay"] == 0.01
    for _ in range(30):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1.25e-5)

    with pytest.raises(ValueError, match="unknown schedule"):
        make_optimizer_and_scheduler(network, "convnext_t")
    with pytest.raises(ValueError, match="no gamma"):
        make_optimizer_and_scheduler(network, {"optimizer": "SGD", "lr": 0.1, "gamma": None, "milestones": [3]})
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer_and_scheduler(network, {"optimizer": "Adam", "lr": 0.1, "milestones": []})


def test_retinanet_loads_a_local_swin_checkpoint(tmp_path):
    torch.manual_seed(0)
    source = retinanet("swin_mini", fpn_channels=16)
    path = tmp_path / "swin.pt"
    torch.save(source.feature_extractor.swin.state_dict(), path)
    torch.manual_seed(1)
    network = retinanet("swin_mini", fpn_channels=16, weights_path=path)
    weight = "layers3.0.blocks.1.attn.qkv.weight"
    assert torch.equal(
        network.feature_extractor.swin.state_dict()[weight], source.feature_extractor.swin.state_dict()[weight]
    )


def test_swin_fpn_backbone_exports_to_onnx_with_its_shifted_window_mask(tmp_path):
    from common.deployment import eager_outputs, export_onnx, onnx_outputs, onnx_session

    torch.manual_seed(0)
    backbone = SwinFPNBackbone(3, **SWIN_SIZES["swin_mini"], fpn_channels=16).eval()
    export_onnx(backbone, torch.rand(1, 3, 64, 64), tmp_path / "swin.onnx")
    x = torch.rand(2, 3, 64, 64)
    deployed, eager = onnx_outputs(onnx_session(tmp_path / "swin.onnx", threads=1), x), eager_outputs(backbone, x)
    assert [t.shape for t in deployed] == [t.shape for t in eager]
    for ours, theirs in zip(deployed, eager):  # 0.1 off before the mask was stored as a constant
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
