import numpy as np
import pytest

from denoise.evaluation import evaluate, noisy_copies, psnr, ssim, to_8bit
from denoise.noise.specs import parse_noise


def test_psnr_of_known_error():
    clean = np.zeros((10, 10, 1), np.float32)
    assert psnr(clean, clean + 0.1) == pytest.approx(20.0)
    assert psnr(clean, clean) == float("inf")


def test_ssim_is_one_for_identical_and_drops_with_noise():
    rng = np.random.default_rng(0)
    clean = rng.random((40, 50, 3))
    noisy = np.clip(clean + rng.normal(0, 0.2, clean.shape), 0, 1)
    assert ssim(clean, clean) == pytest.approx(1.0)
    assert ssim(clean, noisy) < 0.9


def test_ssim_matches_scikit_image():
    from skimage import metrics  # the reference implementation; part of the test extra
    rng = np.random.default_rng(3)
    a = rng.random((64, 80))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    expected = metrics.structural_similarity(
        a, b, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ssim(a, b) == pytest.approx(expected, abs=1e-6)


def test_noisy_copies_are_8bit_and_seeded():
    clean = [np.full((8, 8, 1), 0.5, np.float32)]
    first, again = (
        noisy_copies(clean, parse_noise("gaussian:25"), 7),
        noisy_copies(clean, parse_noise("gaussian:25"), 7),
    )
    assert np.array_equal(first[0], again[0])
    assert np.array_equal(first[0], to_8bit(first[0]))


def test_evaluate_scores_noisy_and_denoised():
    rng = np.random.default_rng(0)
    clean = [np.round(rng.random((32, 32, 1)) * 255).astype(np.float32) / 255 for _ in range(3)]
    perfect = evaluate(lambda noisy: clean, clean, parse_noise("gaussian:25"))
    assert perfect.mean("denoised_psnr") == float("inf")
    assert 20 < perfect.mean("noisy_psnr") < 22
    assert perfect.to_dict()["count"] == 3 and len(perfect.to_dict()["images"]) == 3


def test_evaluate_scores_the_noisy_input_even_when_the_denoiser_overwrites_it():
    clean = [np.full((16, 16, 1), 0.5, np.float32)]

    def in_place(noisy):  # as the run path may: RunSettings.reuse_input
        for image in noisy:
            image[:] = 0.5
        return noisy

    report = evaluate(in_place, clean, parse_noise("gaussian:25"))
    assert report.mean("denoised_psnr") == float("inf")
    assert report.mean("noisy_psnr") < 25
