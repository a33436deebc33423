import io

import numpy as np
from PIL import Image

from biasbench.dataset_format.png import decode, encode_rgb


def test_encoded_pngs_decode_to_the_same_pixels_with_pil():
    gen = np.random.default_rng(0)
    images = gen.integers(0, 256, size=(20, 28, 31, 3), dtype=np.uint8)
    images[3] = 0  # an all-black image
    pngs = encode_rgb(images)
    assert len(pngs) == 20
    for png, image in zip(pngs, images):
        with Image.open(io.BytesIO(png)) as im:
            im.load()
            assert im.format == "PNG" and im.mode == "RGB" and im.size == (31, 28)
        assert np.array_equal(decode(png), image)


def test_encoding_is_deterministic_and_compresses_sparse_images():
    images = np.zeros((2, 28, 28, 3), dtype=np.uint8)
    images[:, 10:18, 10:18] = (200, 30, 40)
    a, b = encode_rgb(images), encode_rgb(images.copy())
    assert a == b
    assert len(a[0]) < 28 * 28 * 3 // 4
