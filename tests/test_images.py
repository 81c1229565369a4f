"""The bundled cat and ``load_image`` on files written here: every mode, and every way to fail."""

import numpy as np
import pytest

from jaxconv.data import ImageLoadError, cat, load_image

Image = pytest.importorskip("PIL.Image")


def test_cat_is_the_articles_shape_in_unit_range():
    x = cat()
    assert x.shape == (320, 400, 3) and x.dtype == np.float32
    assert 0.0 <= x.min() < 0.1 and 0.8 < x.max() <= 1.0
    assert x.std() > 0.1  # a photo, not a flat image
    assert cat(np.float64).dtype == np.float64


def test_cat_rejects_non_float_dtype():
    with pytest.raises(TypeError, match="load_image: dtype must be a floating dtype"):
        cat(np.uint8)


def save(tmp_path, array, name="im.png", mode=None, **kwargs):
    path = tmp_path / name
    im = Image.fromarray(array, mode) if mode else Image.fromarray(array)
    im.save(path, **kwargs)
    return path


def test_rgb_round_trip_exact(tmp_path, rng):
    a = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    x = load_image(save(tmp_path, a))
    assert x.shape == (5, 7, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x, (a / 255).astype(np.float32))


def test_rgba_composited_on_white(tmp_path):
    a = np.array([[[255, 0, 0, 0], [0, 0, 0, 255], [0, 0, 0, 128]]], np.uint8)
    x = load_image(save(tmp_path, a), dtype=np.float64)
    np.testing.assert_allclose(x[0, 0], [1, 1, 1])  # fully transparent red -> white
    np.testing.assert_allclose(x[0, 1], [0, 0, 0])  # opaque black stays black
    np.testing.assert_allclose(x[0, 2], [1 - 128 / 255] * 3)  # half transparent black -> gray
    kept = load_image(tmp_path / "im.png", mode="RGBA")
    assert kept.shape == (1, 3, 4)
    np.testing.assert_allclose(kept[0, :, 3], [0, 1, 128 / 255], rtol=1e-6)


def test_gray_alpha_composited(tmp_path):
    im = Image.new("LA", (2, 1))
    im.putpixel((0, 0), (0, 0))
    im.putpixel((1, 0), (0, 255))
    im.save(tmp_path / "la.png")
    x = load_image(tmp_path / "la.png", mode="L")
    np.testing.assert_allclose(x[0, :, 0], [1, 0])


def test_palette_and_palette_transparency(tmp_path):
    im = Image.new("P", (2, 1))
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.putpixel((0, 0), 0)
    im.putpixel((1, 0), 1)
    im.save(tmp_path / "p.png")
    np.testing.assert_allclose(load_image(tmp_path / "p.png")[0], [[1, 0, 0], [0, 0, 1]])
    im.save(tmp_path / "pt.png", transparency=0)  # palette index 0 is transparent
    np.testing.assert_allclose(load_image(tmp_path / "pt.png")[0], [[1, 1, 1], [0, 0, 1]])


def test_16_bit_keeps_precision(tmp_path):
    a = np.array([[0, 1, 32768, 65535]], np.uint16)
    path = save(tmp_path, a)
    with Image.open(path) as im:
        assert im.mode.startswith("I;16")
    x = load_image(path, mode="L", dtype=np.float64)
    np.testing.assert_allclose(x[0, :, 0], a[0] / 65535)
    assert load_image(path).shape == (1, 4, 3)  # gray replicated to RGB


def test_grayscale_and_luma(tmp_path):
    a = np.array([[0, 255]], np.uint8)
    x = load_image(save(tmp_path, a))
    np.testing.assert_allclose(x[0], [[0, 0, 0], [1, 1, 1]])
    rgb = np.array([[[255, 0, 0]]], np.uint8)
    np.testing.assert_allclose(load_image(save(tmp_path, rgb, "r.png"), mode="L")[0, 0], [0.299])


def test_exif_orientation_applied(tmp_path, rng):
    a = rng.integers(0, 256, (2, 3, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned, rotate 90° clockwise to view
    path = save(tmp_path, a, "rot.png", exif=exif)
    x = load_image(path)
    assert x.shape == (3, 2, 3)
    np.testing.assert_array_equal(x, (np.rot90(a, k=-1) / 255).astype(np.float32))


@pytest.mark.parametrize(
    ("size", "shape"), [(None, (20, 30, 3)), (15, (10, 15, 3)), ((7, 9), (7, 9, 3)), (60, (40, 60, 3))]
)
def test_resize(tmp_path, rng, size, shape):
    a = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    x = load_image(save(tmp_path, a), size=size)
    assert x.shape == shape and 0 <= x.min() and x.max() <= 1


def test_resize_keeps_constant_images_constant(tmp_path):
    a = np.full((8, 8), 40000, np.uint16)
    x = load_image(save(tmp_path, a), size=(3, 5), mode="L", dtype=np.float64)
    np.testing.assert_allclose(x, 40000 / 65535, rtol=1e-6)


def corrupt_files(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 7).save(good)
    data = good.read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.png").write_bytes(b"this is not an image\x00" * 20)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "folder.png").mkdir()
    return {
        "truncated.png": "truncated",
        "garbage.png": "not a recognised image",
        "empty.png": "empty",
        "missing.png": "no such file",
        "folder.png": "directory",
    }


def test_bad_files_raise_one_error_type_naming_the_file(tmp_path):
    for name, reason in corrupt_files(tmp_path).items():
        with pytest.raises(ImageLoadError, match=reason) as info:
            load_image(tmp_path / name)
        message = str(info.value)
        assert name in message and "\n" not in message
        assert info.value.path == str(tmp_path / name)
        assert isinstance(info.value, ValueError)


def test_decompression_bomb_limit_kept(tmp_path, monkeypatch):
    path = save(tmp_path, np.zeros((10, 10), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # 100 pixels > 2 x 10: an error
    with pytest.raises(ImageLoadError, match="decompression-bomb"):
        load_image(path)


def test_argument_errors(tmp_path):
    path = save(tmp_path, np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="load_image: mode must be one of RGB, L, RGBA, got 'CMYK'"):
        load_image(path, mode="CMYK")
    with pytest.raises(TypeError, match="load_image: size must be None, an int"):
        load_image(path, size="big")
    with pytest.raises(ValueError, match=r"load_image: size \(H, W\) must be >= 1 each, got \(0, 3\)"):
        load_image(path, size=(0, 3))
    with pytest.raises(TypeError, match=r"load_image: path must be a str or os\.PathLike, got 3"):
        load_image(3)
