"""Frequency filters (after augmentation, on the ``[3, H, W]`` tensor): Zeng, Yin & Liu's LPF and HPF.

As in their code: the image is reduced to grayscale, its centred 2-D FFT is multiplied by a radial mask
(``ideal``: 1 inside / outside the radius; ``butterworth``: ``1 / (1 + (d / d0)^{2n})`` and its complement),
transformed back, min-max scaled to [0, 1] and repeated to three channels. Their radius 40 is for 224 px
inputs; here it is given at ``ref_size`` and scaled to the input, so the same fraction of the spectrum is kept
at any size (radius 40 at 224 px = 11.4 bins at 64 px).

The output is a *grayscale* image: a low-pass image keeps the coarse luminance layout, a high-pass one the
edges and texture. (YCD accuracies: LPF 70.4%, HPF 79.2%, reference 82.0%.)
"""

from __future__ import annotations

import torch

from dsbias.typedconfig import ConfigError

# ITU-R 601 luma, as torchvision's rgb_to_grayscale and Zeng et al.'s transforms.Grayscale.
_LUMA = (0.299, 0.587, 0.114)


def radial_distance(h: int, w: int) -> torch.Tensor:
    """Distance of each bin of a centred (fftshift-ed) ``h x w`` spectrum from the DC bin. ``[h, w]`` float64."""
    y = torch.arange(h, dtype=torch.float64) - h // 2
    x = torch.arange(w, dtype=torch.float64) - w // 2
    return torch.sqrt(y[:, None] ** 2 + x[None, :] ** 2)


def frequency_mask(h: int, w: int, radius: float, kind: str, order: int, highpass: bool) -> torch.Tensor:
    """The centred ``[h, w]`` float64 transfer function of an ideal or Butterworth low/high-pass filter."""
    d = radial_distance(h, w)
    if kind == "ideal":
        low = (d <= radius).to(torch.float64)
    elif kind == "butterworth":
        low = 1.0 / (1.0 + (d / radius) ** (2 * order))
    else:
        raise ConfigError(f"data.anatomy.filter={kind!r}: use ideal or butterworth")
    return 1.0 - low if highpass else low


class FrequencyFilter:
    """``[3, H, W]`` float tensor -> ``[3, H, W]`` grayscale tensor in [0, 1], filtered in the Fourier domain.

    Deterministic. Works on the un-normalised tensor (``ToTensor`` output); the caller normalises afterwards.

    Args:
        threshold: Cut-off radius in FFT bins at an input side of ``ref_size``.
        ref_size: Side at which ``threshold`` is given (scaled by ``min(H, W) / ref_size``).
        kind: ``ideal`` or ``butterworth``.
        order: Butterworth order.
        highpass: Keep frequencies above the cut-off instead of below.
    """

    def __init__(self, threshold: float, ref_size: int, kind: str, order: int, highpass: bool) -> None:
        if threshold <= 0 or ref_size < 1 or order < 1:
            raise ConfigError(f"data.anatomy: freq_threshold={threshold}, freq_ref_size={ref_size} and "
                             f"filter_order={order} must all be positive")
        if kind not in ("ideal", "butterworth"):
            raise ConfigError(f"data.anatomy.filter={kind!r}: use ideal or butterworth")
        self.threshold, self.ref_size, self.kind, self.order, self.highpass = threshold, ref_size, kind, order, highpass
        self._masks: dict[tuple[int, int], torch.Tensor] = {}

    def radius(self, h: int, w: int) -> float:
        """Cut-off radius in FFT bins for an ``h x w`` input."""
        return self.threshold * min(h, w) / self.ref_size

    def mask(self, h: int, w: int) -> torch.Tensor:
        """Centred transfer function for an ``h x w`` input (computed once per size)."""
        if (h, w) not in self._masks:
            self._masks[(h, w)] = frequency_mask(h, w, self.radius(h, w), self.kind, self.order, self.highpass)
        return self._masks[(h, w)]

    def filtered(self, x: torch.Tensor) -> torch.Tensor:
        """The real filtered grayscale image ``[H, W]`` (float64) before the [0, 1] scaling."""
        if x.ndim != 3 or x.shape[0] != 3:
            raise ValueError(f"frequency filter: expected a [3, H, W] tensor, got {tuple(x.shape)}")
        gray = sum(c * x[i].to(torch.float64) for i, c in enumerate(_LUMA))  # [H, W]
        spec = torch.fft.fftshift(torch.fft.fft2(gray))  # [H, W] complex, DC at (H//2, W//2)
        spec = spec * self.mask(*gray.shape)
        return torch.fft.ifft2(torch.fft.ifftshift(spec)).real

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.filtered(x)
        lo, hi = out.min(), out.max()
        out = (out - lo) / (hi - lo + 1e-5)  # Zeng et al.'s min-max scaling
        return out.to(x.dtype).expand(3, -1, -1).contiguous()

    def __repr__(self) -> str:
        name = "HighPass" if self.highpass else "LowPass"
        return f"{name}(kind={self.kind}, threshold={self.threshold}@{self.ref_size}px, order={self.order})"
