"""Images are read as a viewer shows them, whatever their mode: upright by their EXIF orientation, transparency
composited on white, 16-bit grayscale scaled to 8 bits; and `predict_images` names a file whose data is cut short
instead of raising PIL's bare error."""

import numpy as np
import pytest
from PIL import Image

from infomamba import EncoderConfig
from infomamba.tasks.image.datasets import load_image_file
from infomamba.tasks.image.module import ImageClassifier


def test_exif_orientation_puts_the_image_upright(tmp_path):
    pixels = np.zeros((4, 8, 3), dtype=np.uint8)
    pixels[:, :4] = 255  # stored: white left half; orientation 6 shows it rotated 90 degrees clockwise
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "phone.jpg", exif=exif, quality=100)
    loaded = load_image_file(str(tmp_path / "phone.jpg"), 3)
    assert tuple(loaded.shape) == (3, 8, 4)
    assert loaded[:, :3].float().mean() > 200 and loaded[:, 5:].float().mean() < 50  # white on top after turning


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_is_composited_on_white(tmp_path, mode):
    pixels = np.zeros((8, 8, 4), dtype=np.uint8)  # transparent black around an opaque red square
    pixels[2:6, 2:6] = (255, 0, 0, 255)
    Image.fromarray(pixels).convert(mode).save(tmp_path / "icon.png")
    rgb = load_image_file(str(tmp_path / "icon.png"), 3)
    gray = load_image_file(str(tmp_path / "icon.png"), 1)
    assert rgb[:, 0, 0].tolist() == [255, 255, 255] and gray[:, 0, 0].tolist() == [255]
    assert rgb[:, 3, 3].tolist() == ([255, 0, 0] if mode != "LA" else [76, 76, 76])


@pytest.mark.parametrize("channels", [1, 3])
def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path, channels):
    ramp = np.array([[0, 257 * 64, 257 * 128, 65535]], dtype=np.uint16)
    Image.fromarray(ramp).save(tmp_path / "scan.png")
    assert Image.open(tmp_path / "scan.png").mode == "I;16"
    loaded = load_image_file(str(tmp_path / "scan.png"), channels)
    assert loaded.shape[0] == channels and loaded[0, 0].tolist() == [0, 64, 128, 255]


def test_predict_images_names_a_truncated_file(tmp_path):
    model = ImageClassifier(num_classes=2, encoder=EncoderConfig(dim=16, depth=1), in_chans=3, image_size=16,
                            patch_size=4)
    model.normalisation = ((0.5,) * 3, (0.5,) * 3)
    good, cut = tmp_path / "good.png", tmp_path / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(good)
    cut.write_bytes(good.read_bytes()[:len(good.read_bytes()) // 2])  # the header reads, the pixels do not
    assert len(model.predict_images([good])) == 1
    with pytest.raises(ValueError, match=rf"{cut} is not a readable image: OSError: image file is truncated"):
        model.predict_images([good, cut])
