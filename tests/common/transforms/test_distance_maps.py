"""Tests for the point-annotation signed distance maps (Breznik et al. boundary loss)."""

from __future__ import annotations

import heapq
import itertools

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from scipy import ndimage

from common.transforms.distance_maps import (
    DISTANCE_KINDS,
    SignedDistanceMapd,
    euclidean_distance,
    geodesic_distance,
    minimum_barrier_distance,
    point_signed_distance_maps,
    scale_to_255,
    signed_distance_map,
)

SQRT2 = float(np.sqrt(2.0))


def dijkstra_geodesic(image: np.ndarray, seeds: np.ndarray, lam: float) -> np.ndarray:
    """Exact 8-connected path cost with step cost (1 - lam)|dI| + lam * (1 or sqrt 2)."""
    h, w = image.shape
    dist = np.full((h, w), np.inf)
    queue = []
    for r, c in zip(*np.nonzero(seeds)):
        dist[r, c] = 0.0
        queue.append((0.0, int(r), int(c)))
    heapq.heapify(queue)
    while queue:
        d, r, c = heapq.heappop(queue)
        if d > dist[r, c]:
            continue
        for dr, dc in itertools.product((-1, 0, 1), repeat=2):
            rr, cc = r + dr, c + dc
            if (dr or dc) and 0 <= rr < h and 0 <= cc < w:
                step = SQRT2 if dr and dc else 1.0
                nd = d + (1 - lam) * abs(image[rr, cc] - image[r, c]) + lam * step
                if nd < dist[rr, cc]:
                    dist[rr, cc] = nd
                    heapq.heappush(queue, (nd, rr, cc))
    return dist


def brute_force_mbd(image: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Exact MBD on a quantised image: min over intervals [lo, hi] connecting the pixel to a seed of hi - lo."""
    levels = np.unique(image)
    best = np.full(image.shape, np.inf)
    for lo in levels:
        for hi in levels[levels >= lo]:
            labels, _ = ndimage.label((image >= lo) & (image <= hi), structure=np.ones((3, 3)))
            ids = np.unique(labels[seeds])
            reach = np.isin(labels, ids[ids > 0])
            best[reach] = np.minimum(best[reach], hi - lo)
    return best


def chamfer_from_seeds(shape: tuple[int, int], seeds: np.ndarray) -> np.ndarray:
    """Closed-form 8-neighbour chamfer distance (steps 1 and sqrt 2) to the nearest seed, no obstacles."""
    rows, cols = np.indices(shape)
    best = np.full(shape, np.inf)
    for r, c in zip(*np.nonzero(seeds)):
        dr, dc = np.abs(rows - r), np.abs(cols - c)
        best = np.minimum(best, np.maximum(dr, dc) - np.minimum(dr, dc) + SQRT2 * np.minimum(dr, dc))
    return best


@pytest.fixture
def smooth_image() -> np.ndarray:
    rng = np.random.default_rng(3)
    return scale_to_255(ndimage.gaussian_filter(rng.random((20, 24)), 1.5))


def test_scale_to_255():
    out = scale_to_255(np.array([[2.0, 4.0], [6.0, 3.0]]))
    assert out.dtype == np.float64
    assert out.min() == 0.0 and out.max() == 255.0
    np.testing.assert_allclose(out, [[0.0, 127.5], [255.0, 63.75]])
    np.testing.assert_array_equal(scale_to_255(np.full((3, 3), 7.0)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        scale_to_255(np.array([0.0, np.nan]))


def test_euclidean_signed_map_matches_scipy_edt(smooth_image):
    region = np.zeros(smooth_image.shape, dtype=bool)
    region[5:10, 6:12] = True
    region[14:17, 18:20] = True
    phi = signed_distance_map(smooth_image, region, "euclidean")
    np.testing.assert_allclose(phi[~region], ndimage.distance_transform_edt(~region)[~region])
    np.testing.assert_allclose(phi[region], -ndimage.distance_transform_edt(region)[region])
    assert (phi[region] < 0).all() and (phi[~region] > 0).all()
    assert np.isinf(euclidean_distance(np.zeros((4, 4), dtype=bool))).all()


def test_geodesic_lambda_one_on_constant_image_is_chamfer():
    image = np.full((15, 17), 42.0)
    seeds = np.zeros(image.shape, dtype=bool)
    seeds[3, 4] = seeds[11, 14] = seeds[7, 0] = True
    expected = chamfer_from_seeds(image.shape, seeds)
    np.testing.assert_allclose(geodesic_distance(image, seeds, lam=1.0), expected, atol=1e-12)
    # On a constant image the intensity term vanishes, whatever the weight: lam scales the chamfer distance.
    np.testing.assert_allclose(geodesic_distance(image, seeds, lam=0.5), 0.5 * expected, atol=1e-12)
    np.testing.assert_array_equal(geodesic_distance(image, seeds, lam=0.0), np.zeros(image.shape))


@pytest.mark.parametrize("lam", [0.5, 0.0])
@pytest.mark.parametrize("smooth", [0.0, 1.5])
def test_geodesic_raster_scan_against_dijkstra(lam, smooth):
    """Two iterations: never below the exact distance, mean relative error < 1 %; many iterations: exact."""
    rng = np.random.default_rng(11)
    for _ in range(4):
        image = rng.random((16, 16))
        if smooth:
            image = ndimage.gaussian_filter(image, smooth)
        image = scale_to_255(image)
        seeds = rng.random(image.shape) < 0.02
        seeds[rng.integers(16), rng.integers(16)] = True
        exact = dijkstra_geodesic(image, seeds, lam)
        approx = geodesic_distance(image, seeds, lam, iterations=2)
        assert (approx >= exact - 1e-9).all()
        assert np.abs(approx - exact).mean() <= 0.01 * exact.mean()
        np.testing.assert_allclose(geodesic_distance(image, seeds, lam, iterations=12), exact, atol=1e-9)


def test_stacked_seeds_equal_separate_calls(smooth_image):
    rng = np.random.default_rng(5)
    seeds = rng.random((3, *smooth_image.shape)) < 0.01
    seeds[:, 0, 0] = True
    stacked = geodesic_distance(smooth_image, seeds, 0.5)
    mbd = minimum_barrier_distance(smooth_image, seeds)
    assert stacked.shape == mbd.shape == seeds.shape
    for i in range(3):
        np.testing.assert_array_equal(stacked[i], geodesic_distance(smooth_image, seeds[i], 0.5))
        np.testing.assert_array_equal(mbd[i], minimum_barrier_distance(smooth_image, seeds[i]))


def test_empty_seed_mask_gives_inf():
    image = np.zeros((4, 5))
    seeds = np.zeros((2, 4, 5), dtype=bool)
    seeds[0, 1, 1] = True
    assert np.isinf(geodesic_distance(image, seeds, 0.5)[1]).all()
    assert np.isinf(minimum_barrier_distance(image, seeds)[1]).all()
    assert np.isfinite(minimum_barrier_distance(image, seeds)[0]).all()


def test_thin_images():
    image = np.arange(7, dtype=float)[None]
    seeds = np.zeros_like(image, dtype=bool)
    seeds[0, 0] = True
    np.testing.assert_allclose(geodesic_distance(image, seeds, 0.0), image)
    np.testing.assert_allclose(minimum_barrier_distance(image.T, seeds.T), image.T)


def test_mbd_zero_on_constant_region_and_positive_across_barrier():
    image = np.zeros((12, 12))
    image[:, 6] = 100.0  # a vertical wall splitting the image
    image[2:5, 8:11] = 30.0  # a plateau behind the wall
    seeds = np.zeros(image.shape, dtype=bool)
    seeds[5, 2] = True
    mbd = minimum_barrier_distance(image, seeds)
    np.testing.assert_array_equal(mbd[:, :6], 0.0)  # constant connected region containing the seed
    np.testing.assert_array_equal(mbd[:, 6], 100.0)
    np.testing.assert_array_equal(mbd[:, 7:], 100.0)  # every path crosses the wall (range 0..100)
    # A ring barrier around the seed: inside 0, ring and outside 50.
    ring = np.zeros((11, 11))
    ring[2:9, 2:9] = 50.0
    ring[3:8, 3:8] = 0.0
    seeds = np.zeros(ring.shape, dtype=bool)
    seeds[5, 5] = True
    mbd = minimum_barrier_distance(ring, seeds)
    np.testing.assert_array_equal(mbd[3:8, 3:8], 0.0)
    outside = np.ones(ring.shape, dtype=bool)
    outside[3:8, 3:8] = False
    np.testing.assert_array_equal(mbd[outside], 50.0)


def test_mbd_raster_upper_bounds_exact_brute_force():
    rng = np.random.default_rng(7)
    equal = []
    for levels, smooth in [(3, 0.0), (5, 0.0), (5, 1.0)]:
        for _ in range(5):
            image = rng.random((9, 10))
            if smooth:
                image = ndimage.gaussian_filter(image, smooth)
            image = np.floor(scale_to_255(image) / 255.0 * (levels - 1e-3))
            seeds = np.zeros(image.shape, dtype=bool)
            seeds[rng.integers(9), rng.integers(10)] = True
            exact = brute_force_mbd(image, seeds)
            approx = minimum_barrier_distance(image, seeds)
            assert (approx >= exact).all()
            equal.append((approx == exact).mean())
    # The raster scan is exact on most pixels even for noisy images (measured ~96 %).
    assert np.mean(equal) >= 0.9


def test_mbd_equals_brute_force_on_simple_images():
    ramp = np.add.outer(np.arange(6), np.arange(7)).astype(float)  # monotone ramp
    steps = np.zeros((8, 8))
    steps[:, 3:] = 2.0
    steps[4:, 5:] = 4.0
    for image in (ramp, steps):
        seeds = np.zeros(image.shape, dtype=bool)
        seeds[0, 0] = True
        np.testing.assert_array_equal(minimum_barrier_distance(image, seeds), brute_force_mbd(image, seeds))


@pytest.mark.parametrize("kind", DISTANCE_KINDS)
def test_signed_map_signs(kind, smooth_image):
    region = np.zeros(smooth_image.shape, dtype=bool)
    region[8:11, 9:12] = True
    phi = signed_distance_map(smooth_image, region, kind)
    assert phi.shape == smooth_image.shape
    assert (phi[region] <= 0).all()
    assert (phi[~region] >= 0).all()
    if kind != "mbd":  # MBD is a pseudo-distance: it can be 0 outside the region
        assert (phi[region] < 0).all() and (phi[~region] > 0).all()


def test_signed_map_geodesic_lambda_and_intensity(smooth_image):
    region = np.zeros(smooth_image.shape, dtype=bool)
    region[4:7, 4:7] = True
    scaled = scale_to_255(smooth_image)
    out = geodesic_distance(scaled, region, 0.5)
    phi = signed_distance_map(smooth_image, region, "geodesic")
    np.testing.assert_allclose(phi[~region], out[~region])
    phi_int = signed_distance_map(smooth_image, region, "intensity", lam=0.9)  # lam is fixed to 0
    np.testing.assert_allclose(phi_int[~region], geodesic_distance(scaled, region, 0.0)[~region])


def test_point_maps_absent_classes_and_normalisation(smooth_image):
    points = np.zeros(smooth_image.shape, dtype=np.int64)
    points[3:6, 3:6] = 1
    points[12:15, 15:18] = 3
    for kind in DISTANCE_KINDS:
        maps = point_signed_distance_maps(smooth_image, points, (1, 2, 3), kind)
        assert maps.shape == (3, *smooth_image.shape) and maps.dtype == np.float32
        np.testing.assert_array_equal(maps[1], 1.0)  # class 2 absent -> ones (paper)
        for k in (0, 2):
            assert np.abs(maps[k]).max() == pytest.approx(1.0)
            assert maps[k].min() >= -1.0 and maps[k].max() <= 1.0
        zeros = point_signed_distance_maps(smooth_image, points, (1, 2, 3), kind, absent="zeros")
        np.testing.assert_array_equal(zeros[1], 0.0)
        np.testing.assert_array_equal(zeros[[0, 2]], maps[[0, 2]])
    raw = point_signed_distance_maps(smooth_image, points, (3, 1), "geodesic", normalise=False)
    np.testing.assert_allclose(raw[0], signed_distance_map(smooth_image, points == 3, "geodesic"), rtol=1e-6)
    np.testing.assert_allclose(raw[1], signed_distance_map(smooth_image, points == 1, "geodesic"), rtol=1e-6)
    assert np.abs(raw).max() > 1.0
    none = point_signed_distance_maps(smooth_image, np.zeros_like(points), (1, 2), "mbd", absent="zeros")
    np.testing.assert_array_equal(none, 0.0)


def test_bad_arguments(smooth_image):
    points = np.zeros(smooth_image.shape, dtype=np.int64)
    with pytest.raises(ValueError, match="allowed values are"):
        point_signed_distance_maps(smooth_image, points, (1,), "chebyshev")
    with pytest.raises(ValueError, match="absent"):
        point_signed_distance_maps(smooth_image, points, (1,), "mbd", absent="nan")
    with pytest.raises(ValueError, match="positive"):
        point_signed_distance_maps(smooth_image, points, (0, 1), "mbd")
    with pytest.raises(ValueError, match="does not match"):
        point_signed_distance_maps(smooth_image, points[:-1], (1,), "mbd")
    with pytest.raises(ValueError, match="2D"):
        geodesic_distance(np.zeros((3, 4, 5)), np.zeros((3, 4, 5), dtype=bool), 0.5)
    with pytest.raises(ValueError, match="seeds"):
        minimum_barrier_distance(np.zeros((4, 5)), np.zeros((5, 4), dtype=bool))
    with pytest.raises(ValueError, match="lam"):
        geodesic_distance(np.zeros((4, 5)), np.ones((4, 5), dtype=bool), 1.5)
    with pytest.raises(ValueError, match="iterations"):
        minimum_barrier_distance(np.zeros((4, 5)), np.ones((4, 5), dtype=bool), iterations=0)


def test_dictionary_transform(smooth_image):
    points = np.zeros((1, *smooth_image.shape), dtype=np.float32)
    points[0, 3:6, 3:6] = 1
    points[0, 10:12, 10:12] = 2
    image = MetaTensor(torch.as_tensor(smooth_image[None], dtype=torch.float32), meta={"filename_or_obj": "x.nii"})
    transform = SignedDistanceMapd(classes=(1, 2, 3), kind="geodesic")
    out = transform({"image": image, "points": torch.as_tensor(points)})
    distance = out["distance"]
    assert isinstance(distance, MetaTensor) and distance.meta["filename_or_obj"] == "x.nii"
    assert distance.shape == (3, *smooth_image.shape) and distance.dtype == torch.float32
    expected = point_signed_distance_maps(smooth_image.astype(np.float32), points[0], (1, 2, 3), "geodesic")
    np.testing.assert_allclose(distance.numpy(), expected, atol=1e-6)
    assert out["image"] is image

    plain = SignedDistanceMapd(kind="euclidean")({"image": torch.as_tensor(smooth_image[None]), "points": points})
    assert type(plain["distance"]) is torch.Tensor

    with pytest.raises(ValueError, match="2D"):
        transform({"image": torch.zeros(1, 4, 4, 4), "points": torch.zeros(1, 4, 4, 4)})
    with pytest.raises(ValueError, match="points must have shape"):
        transform({"image": image, "points": torch.zeros(1, 3, 3)})
    with pytest.raises(KeyError, match="points"):
        transform({"image": image})
    assert "distance" not in SignedDistanceMapd(allow_missing_keys=True)({"image": image})
    with pytest.raises(ValueError, match="allowed values are"):
        SignedDistanceMapd(kind="manhattan")
    with pytest.raises(ValueError, match="allowed values are"):
        SignedDistanceMapd(absent="nan")


def test_absent_modes_are_the_documented_ones():
    from common.transforms import ABSENT_MODES, point_signed_distance_maps

    assert ABSENT_MODES == ("ones", "zeros")
    image, points = np.zeros((8, 8)), np.zeros((8, 8), np.int64)
    for mode, value in zip(ABSENT_MODES, (1.0, 0.0)):
        assert np.all(point_signed_distance_maps(image, points, [1], "mbd", absent=mode) == value)
