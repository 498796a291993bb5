"""Data for the deep arm: Fashion-MNIST (IDX), CIFAR-10 (binary) and a synthetic teacher.

Everything is held as tensors on the training device; there are no DataLoader
workers. A :class:`DataBundle` carries the train / validation / test splits already
standardized per channel with the *training* split's mean and standard deviation,
then scaled by ``amplitude`` and, optionally, corrupted by Gaussian input noise at a
given signal-to-noise ratio (Annamalai & Thakur's two experiments):

.. math::

    x = a \\, \\frac{x_{raw} - \\mu_c}{s_c} + \\xi, \\qquad
    \\xi \\sim \\mathcal N\\!\\left(0, \\frac{a^2}{\\mathrm{SNR}}\\right) \\text{ i.i.d. per pixel},

so ``SNR = Var(signal) / Var(noise)`` is a ratio of *variances* (not amplitudes):
after standardization every channel of the training inputs has variance 1, the
signal variance is ``a**2`` and the noise variance ``a**2 / snr``. The noise is drawn
once (seeded) and added to all three splits, like a corrupted data set.

Loaders never unpickle anything: Fashion-MNIST is parsed from its IDX files (gzipped
or raw) and CIFAR-10 from the official *binary* batches.

Randomness (validation split, subsets, synthetic samples, noise, per-epoch
permutations and augmentation) comes from seeds; :func:`derive_seed` turns a base
seed and a few integer keys into independent streams.
"""

from __future__ import annotations

import functools
import gzip
import logging
import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import check_choice, check_int, check_memory, check_real
from . import names as _names

__all__ = [
    "DATASETS",
    "FASHION_MNIST_DIR",
    "CIFAR10_TRAIN_FILES",
    "CIFAR10_TEST_FILE",
    "DataBundle",
    "augment",
    "derive_seed",
    "iterate_minibatches",
    "load_cifar10",
    "load_fashion_mnist",
    "make_dataset",
    "read_idx",
    "synthetic_teacher",
]

log = logging.getLogger(__name__)

#: Data sets by name (the CLI reads the same tuple from :mod:`.names`, torch-free).
DATASETS = _names.DATASETS
SPLITS = ("train", "test")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_FASHION_HINT = ("install it with `apt-get install -y dataset-fashion-mnist` or point "
                 "--data-dir at a folder holding the four IDX files")
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch.bin"
_CIFAR_RECORD = 1 + 3 * 32 * 32  # one label byte, then 1024 R, 1024 G, 1024 B bytes

# Synthetic defaults: a pool of 10k training (+ validation) samples and 2k test samples.
SYNTHETIC_TRAIN = 10_000
SYNTHETIC_TEST = 2_000


def derive_seed(seed: int, *keys: int) -> int:
    """An independent 31-bit seed for the stream named by ``keys`` under ``seed``.

    Uses :class:`numpy.random.SeedSequence`, so ``derive_seed(0, 1)`` and
    ``derive_seed(0, 2)`` are unrelated streams and the result is reproducible.

    >>> derive_seed(0, 1) == derive_seed(0, 1) != derive_seed(0, 2)
    True
    """
    entropy = [int(seed)] + [int(k) for k in keys]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0] >> 1)


# ----------------------------------------------------------------------------- IDX files

# IDX type codes (third magic byte) -> big-endian numpy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic ``1f 8b``."""
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt gzip stream ({exc})") from None


def read_idx(path) -> np.ndarray:
    """Parse one IDX file (raw or gzipped) into a native-endian numpy array.

    IDX layout (LeCun's MNIST format): two zero bytes, a type code (``0x08`` = uint8,
    ``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E``
    float64), the number of dimensions ``d``, then ``d`` big-endian uint32 sizes, then
    the data in row-major order. The data size must match the header exactly.

    Parameters
    ----------
    path : str or Path
        The file; gzip is detected from its content, not its name.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        Naming the file, when the magic number, header or data size is wrong.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: not an IDX file (only {len(raw)} bytes)")
    z0, z1, code, ndim = raw[:4]
    if z0 != 0 or z1 != 0 or code not in _IDX_DTYPES or ndim == 0:
        magic = int.from_bytes(raw[:4], "big")
        raise ValueError(f"{path}: bad IDX magic number 0x{magic:08x} "
                         "(expected 0x000008nn..0x00000enn with nn >= 1 dimensions)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header})")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: IDX header says shape {tuple(dims)} ({expected} data bytes) "
                         f"but the file holds {len(raw) - header} data bytes")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def _find_idx(directory: Path, stem: str) -> Path:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"Fashion-MNIST file {directory / stem}.gz (or {stem}) not found; "
                            f"{_FASHION_HINT}")


def load_fashion_mnist(data_dir=None, *, split: str = "train"):
    """Fashion-MNIST images and labels from the IDX files in ``data_dir``.

    Parameters
    ----------
    data_dir : str or Path, optional
        Folder with ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
        ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``; defaults to
        ``/usr/share/datasets/fashion-mnist`` (Debian package ``dataset-fashion-mnist``).
    split : {"train", "test"}
        60000 training or 10000 test images for the real data set.

    Returns
    -------
    images : torch.Tensor, uint8, shape (n, 1, 28, 28)
    labels : torch.Tensor, int64, shape (n,), values in 0..9

    Raises
    ------
    FileNotFoundError
        Naming the missing file and how to install the data set.
    ValueError
        Naming the file when it is corrupt or images and labels disagree.
    """
    check_choice("split", split, SPLITS)
    directory = FASHION_MNIST_DIR if data_dir is None else Path(data_dir)
    img_stem, lab_stem = _FASHION_FILES[split]
    img_path, lab_path = _find_idx(directory, img_stem), _find_idx(directory, lab_stem)
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"{img_path}: expected uint8 images of shape (n, rows, cols), "
                         f"got {images.dtype} {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{lab_path}: expected uint8 labels of shape (n,), "
                         f"got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{img_path} holds {len(images)} images but {lab_path} holds "
                         f"{len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{lab_path}: label {int(labels.max())} outside 0..9")
    return (torch.from_numpy(images).unsqueeze(1),
            torch.from_numpy(labels.astype(np.int64)))


# ----------------------------------------------------------------------------- CIFAR-10


def load_cifar10(data_dir, split: str = "train"):
    """CIFAR-10 from the official binary batches (``cifar-10-batches-bin``), no pickle.

    Each file is a sequence of 3073-byte records: one label byte (0..9), then the
    32x32 image as 1024 red, 1024 green and 1024 blue bytes in row-major order.
    The official files hold 10000 records each; any whole number of records is read.

    Parameters
    ----------
    data_dir : str or Path
        Folder holding ``data_batch_1.bin`` .. ``data_batch_5.bin`` and ``test_batch.bin``.
    split : {"train", "test"}
        The five training batches (50000 images) or the test batch (10000).

    Returns
    -------
    images : torch.Tensor, uint8, shape (n, 3, 32, 32)
    labels : torch.Tensor, int64, shape (n,)

    Raises
    ------
    FileNotFoundError
        Naming a missing batch file.
    ValueError
        Naming a file whose size is not a positive multiple of 3073 bytes or whose
        labels lie outside 0..9.
    """
    check_choice("split", split, SPLITS)
    if data_dir is None:
        raise ValueError("data_dir must name the folder holding the CIFAR-10 binary batches "
                         "(data_batch_1.bin .. test_batch.bin); got None")
    directory = Path(data_dir)
    names = CIFAR10_TRAIN_FILES if split == "train" else (CIFAR10_TEST_FILE,)
    images, labels = [], []
    for name in names:
        path = directory / name
        if not path.is_file():
            raise FileNotFoundError(f"CIFAR-10 file {path} not found; download the binary "
                                    "version (cifar-10-binary.tar.gz) and pass its folder "
                                    "as --data-dir")
        raw = path.read_bytes()
        if len(raw) == 0 or len(raw) % _CIFAR_RECORD:
            raise ValueError(f"{path}: size {len(raw)} bytes is not a positive multiple of "
                             f"the {_CIFAR_RECORD}-byte CIFAR-10 record")
        rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
        if rec[:, 0].max() > 9:
            raise ValueError(f"{path}: label {int(rec[:, 0].max())} outside 0..9 "
                             "(is this the CIFAR-100 binary format?)")
        labels.append(rec[:, 0].astype(np.int64))
        images.append(rec[:, 1:].reshape(-1, 3, 32, 32))
    return (torch.from_numpy(np.concatenate(images)),
            torch.from_numpy(np.concatenate(labels)))


# ----------------------------------------------------------------------------- synthetic


@functools.lru_cache(maxsize=8)
def _teacher(teacher_seed, in_channels, image_size, width, num_classes, smoothing):
    """The teacher's weights and its per-class logit mean and std on 4096 inputs."""
    g = torch.Generator().manual_seed(derive_seed(teacher_seed, 0))
    opts = dict(generator=g, dtype=torch.float64)
    side = image_size // 2
    w1 = torch.randn(width, in_channels, 3, 3, **opts) * math.sqrt(2.0 / (9 * in_channels))
    w2 = torch.randn(num_classes, width * side * side, **opts) / math.sqrt(width * side * side)
    g_cal = torch.Generator().manual_seed(derive_seed(teacher_seed, 1))
    shape = (4096, in_channels, image_size, image_size)
    cal = _smooth(torch.randn(shape, generator=g_cal, dtype=torch.float64), smoothing)
    cal = _teacher_logits(cal, (w1, w2))
    return (w1, w2), cal.mean(0), cal.std(0)


def _teacher_logits(x, weights):
    w1, w2 = weights
    h = F.avg_pool2d(F.relu(F.conv2d(x, w1, padding=1)), 2)
    return h.flatten(1) @ w2.T


def _smooth(x, sigma):
    """Separable Gaussian blur of std ``sigma`` pixels, kernel of unit L2 norm."""
    if sigma == 0:
        return x
    r = max(1, math.ceil(3 * sigma))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=x.dtype) ** 2 / (2 * sigma * sigma))
    k = k / k.norm()  # keeps the variance of i.i.d. pixels (away from the border)
    c = x.shape[1]
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), padding=(0, r), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), padding=(r, 0), groups=c)


def synthetic_teacher(n: int, *, seed: int, image_size: int = 16, in_channels: int = 1,
                      num_classes: int = 10, width: int = 16, smoothing: float = 1.0,
                      teacher_seed: int = 0):
    """Smoothed Gaussian images labelled by a fixed random teacher CNN; always available.

    Inputs are i.i.d. standard Gaussian pixels blurred by a Gaussian kernel of std
    ``smoothing`` pixels (normalized so that pixel variance stays 1 away from the
    border), shape ``(in_channels, image_size, image_size)``. The teacher is
    ``conv3x3(width) - ReLU - avgpool(2) - linear(num_classes)`` with He-initialized
    conv weights and a ``1/sqrt(fan_in)`` readout drawn from ``teacher_seed``; its
    logits are standardized per class on a fixed calibration set of 4096 inputs (so
    the classes are roughly balanced) and the label is their argmax. Local features
    read out at every position make the task learnable by the CNNs of ``deep.models``
    (a deeper teacher with global pooling gives labels no student learns from a few
    thousand samples). Everything is computed in float64 on the CPU, so the same
    arguments give the same data on every machine.

    Parameters
    ----------
    n : int
        Number of samples (>= 1).
    seed : int
        Seed of the inputs; the teacher depends on ``teacher_seed`` only.
    image_size : int
        Height and width (>= 2).
    in_channels : int
        Input channels (>= 1).
    num_classes : int
        Number of labels (>= 2).
    width : int
        Teacher channels (>= 1).
    smoothing : float
        Blur std in pixels (>= 0; 0 leaves the pixels i.i.d.).
    teacher_seed : int
        Seed of the teacher's weights and its calibration set.

    Returns
    -------
    images : torch.Tensor, float32, shape (n, in_channels, image_size, image_size)
    labels : torch.Tensor, int64, shape (n,)

    Examples
    --------
    >>> x, y = synthetic_teacher(8, seed=1)
    >>> tuple(x.shape), y.dtype
    ((8, 1, 16, 16), torch.int64)
    """
    n = check_int("n", n, lo=1)
    seed = check_int("seed", seed, lo=0)
    image_size = check_int("image_size", image_size, lo=2)
    in_channels = check_int("in_channels", in_channels, lo=1)
    num_classes = check_int("num_classes", num_classes, lo=2)
    width = check_int("width", width, lo=1)
    smoothing = check_real("smoothing", smoothing, 0.0, 10.0)
    teacher_seed = check_int("teacher_seed", teacher_seed, lo=0)
    weights, mu, sd = _teacher(teacher_seed, in_channels, image_size, width, num_classes,
                               smoothing)
    g = torch.Generator().manual_seed(derive_seed(seed, 2))
    shape = (n, in_channels, image_size, image_size)
    x = _smooth(torch.randn(shape, generator=g, dtype=torch.float64), smoothing)
    labels = torch.cat([((_teacher_logits(chunk, weights) - mu) / sd).argmax(1)
                        for chunk in x.split(4096)])
    return x.float(), labels


# ----------------------------------------------------------------------------- bundle


@dataclass(frozen=True, eq=False)
class DataBundle:
    """Train / validation / test tensors on one device, ready for training.

    Inputs are standardized per channel with the training split's ``mean`` and
    ``std`` (of the raw pixel values in [0, 1] for image data sets), multiplied by
    ``amplitude`` and corrupted by noise of variance ``amplitude**2 / snr`` (see the
    module docstring). Labels are int64.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: tuple
    std: tuple
    num_classes: int
    amplitude: float = 1.0
    snr: float | None = None
    seed: int = 0

    @property
    def in_channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[-1])

    @property
    def device(self) -> torch.device:
        return self.train_x.device

    def split(self, name: str):
        """``(x, y)`` of the split ``"train"``, ``"val"`` or ``"test"``."""
        check_choice("split", name, ("train", "val", "test"))
        return getattr(self, f"{name}_x"), getattr(self, f"{name}_y")

    def to_dict(self) -> dict:
        """A JSON-ready summary (sizes and preprocessing), without the tensors."""
        return {"name": self.name, "n_train": len(self.train_y), "n_val": len(self.val_y),
                "n_test": len(self.test_y), "in_channels": self.in_channels,
                "image_size": self.image_size, "num_classes": self.num_classes,
                "mean": list(self.mean), "std": list(self.std), "amplitude": self.amplitude,
                "snr": self.snr, "seed": self.seed}


def _load_raw(name, data_dir, seed, subset, test_subset):
    """Raw (train pool, test) tensors and the pixel scale for ``name``."""
    if name == "fashion-mnist":
        return (*load_fashion_mnist(data_dir, split="train"),
                *load_fashion_mnist(data_dir, split="test"), 10)
    if name == "cifar10":
        return (*load_cifar10(data_dir, "train"), *load_cifar10(data_dir, "test"), 10)
    n_train = SYNTHETIC_TRAIN if subset is None else subset
    n_test = SYNTHETIC_TEST if test_subset is None else test_subset
    # Inputs of the test split come from a different stream than the training pool.
    return (*synthetic_teacher(n_train, seed=derive_seed(seed, 10)),
            *synthetic_teacher(n_test, seed=derive_seed(seed, 11)), 10)


def make_dataset(name: str, *, data_dir=None, val_fraction: float = 0.1, subset=None,
                 test_subset=None, seed: int = 0, device="cpu", amplitude: float = 1.0,
                 snr=None) -> DataBundle:
    """Load, split, standardize and move a data set to ``device``.

    Parameters
    ----------
    name : {"fashion-mnist", "cifar10", "synthetic", "auto"}
        ``"auto"`` is Fashion-MNIST when its files are present and otherwise the
        synthetic teacher, with a one-line logging notice saying how to install it.
    data_dir : str or Path, optional
        Folder of the image files (required for CIFAR-10).
    val_fraction : float
        Fraction in [0, 1) of the (sub-sampled) training pool held out for validation.
    subset : int, optional
        Use only this many training-pool samples (a seeded random subset); for the
        synthetic teacher, the size of the pool (default 10000).
    test_subset : int, optional
        Use only this many test samples (seeded); synthetic default 2000.
    seed : int
        Seed of the subset, the validation split, synthetic inputs and noise.
    device : str or torch.device
        Where the tensors live.
    amplitude : float
        Multiplies the standardized inputs (> 0); Annamalai & Thakur use 2..6.
    snr : float, optional
        Signal-to-noise *variance* ratio of added Gaussian input noise (> 0);
        ``None`` adds none.

    Returns
    -------
    DataBundle
    """
    check_choice("name", name, DATASETS)
    val_fraction = check_real("val_fraction", val_fraction, 0.0, 1.0, hi_open=True)
    if subset is not None:
        subset = check_int("subset", subset, lo=2)
    if test_subset is not None:
        test_subset = check_int("test_subset", test_subset, lo=1)
    if name in ("synthetic", "auto"):  # generated in memory: float32 16x16 images, copies
        n = (subset or SYNTHETIC_TRAIN) + (test_subset or SYNTHETIC_TEST)
        check_memory(f"a synthetic data set of {n} samples", 4 * 16 * 16 * 4.0 * n)
    seed = check_int("seed", seed, lo=0)
    amplitude = check_real("amplitude", amplitude, 0.0, lo_open=True)
    if snr is not None:
        snr = check_real("snr", snr, 0.0, lo_open=True)
    device = torch.device(device)

    if name == "auto":
        try:
            raw = _load_raw("fashion-mnist", data_dir, seed, subset, test_subset)
            name = "fashion-mnist"
        except FileNotFoundError as exc:
            log.warning("Fashion-MNIST not found (%s); using the synthetic teacher instead",
                        exc)
            raw, name = _load_raw("synthetic", None, seed, subset, test_subset), "synthetic"
    else:
        raw = _load_raw(name, data_dir, seed, subset, test_subset)
    pool_x, pool_y, test_x, test_y, num_classes = raw

    g = torch.Generator().manual_seed(derive_seed(seed, 20))
    if subset is not None and name != "synthetic":
        if subset > len(pool_y):
            raise ValueError(f"subset must be an integer in [2, {len(pool_y)}] for {name}, "
                             f"got {subset}")
        keep = torch.randperm(len(pool_y), generator=g)[:subset]
        pool_x, pool_y = pool_x[keep], pool_y[keep]
    if test_subset is not None and name != "synthetic":
        keep = torch.randperm(len(test_y), generator=g)[:min(test_subset, len(test_y))]
        test_x, test_y = test_x[keep], test_y[keep]
    n_val = int(round(val_fraction * len(pool_y)))
    if len(pool_y) - n_val < 2:
        raise ValueError(f"val_fraction={val_fraction} leaves {len(pool_y) - n_val} training "
                         "samples; need at least 2")
    perm = torch.randperm(len(pool_y), generator=g)
    val_idx, train_idx = perm[:n_val], perm[n_val:]

    scale = 255.0 if pool_x.dtype == torch.uint8 else 1.0
    train_x = pool_x[train_idx].float() / scale
    mean = train_x.mean(dim=(0, 2, 3))
    std = train_x.std(dim=(0, 2, 3)).clamp_min(1e-12)

    def prep(x, key):
        x = (x.float() / scale - mean[:, None, None]) / std[:, None, None] * amplitude
        if snr is not None:
            gn = torch.Generator().manual_seed(derive_seed(seed, 30, key))
            x = x + torch.randn(x.shape, generator=gn) * (amplitude / math.sqrt(snr))
        return x.contiguous().to(device)

    return DataBundle(
        name=name,
        train_x=prep(pool_x[train_idx], 0), train_y=pool_y[train_idx].to(device),
        val_x=prep(pool_x[val_idx], 1), val_y=pool_y[val_idx].to(device),
        test_x=prep(test_x, 2), test_y=test_y.to(device),
        mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std),
        num_classes=num_classes, amplitude=amplitude, snr=snr, seed=seed)


# ----------------------------------------------------------------------------- batching


def iterate_minibatches(n: int, batch_size: int, *, generator=None,
                        drop_last: bool = False) -> Iterator[torch.Tensor]:
    """Index tensors (CPU, int64) of consecutive minibatches of ``range(n)``.

    With a ``generator`` the order is a fresh seeded permutation (one per call, i.e.
    per epoch); without, the natural order. ``drop_last`` drops a final short batch
    (used in training, where BN needs more than one sample per batch).

    >>> [b.tolist() for b in iterate_minibatches(5, 2)]
    [[0, 1], [2, 3], [4]]
    """
    n = check_int("n", n, lo=0)
    batch_size = check_int("batch_size", batch_size, lo=1)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]


def augment(x: torch.Tensor, generator: torch.Generator, *, flip: bool = True,
            pad: int = 4) -> torch.Tensor:
    """Standard augmentation of a batch on its own device: flip and pad-and-crop.

    Each image is mirrored left-right with probability 1/2 and then zero-padded by
    ``pad`` pixels on every side and cropped back to its size at a uniformly random
    offset (He et al. 2016's CIFAR recipe). The random numbers come from the CPU
    ``generator``, so results are identical on every device for the same seed.
    Zero padding is applied to the standardized inputs (i.e. it pads with the mean).

    Parameters
    ----------
    x : torch.Tensor, shape (B, C, H, W)
        The batch.
    generator : torch.Generator
        CPU generator that supplies the flips and offsets.
    flip : bool
        Whether to apply random horizontal flips.
    pad : int
        Padding of the random crop (>= 0; 0 disables cropping).

    Returns
    -------
    torch.Tensor of the same shape, dtype and device as ``x``.
    """
    pad = check_int("pad", pad, lo=0)
    if x.ndim != 4:
        raise ValueError(f"x must have shape (B, C, H, W), got {tuple(x.shape)}")
    b, _, h, w = x.shape
    flips = torch.rand(b, generator=generator) < 0.5
    offsets = torch.randint(0, 2 * pad + 1, (2, b), generator=generator)
    if flip:
        x = torch.where(flips.to(x.device)[:, None, None, None], x.flip(-1), x)
    if pad == 0:
        return x
    padded = F.pad(x, (pad, pad, pad, pad))
    off = offsets.to(x.device)
    rows = (off[0][:, None] + torch.arange(h, device=x.device))[:, :, None]  # (B, H, 1)
    cols = (off[1][:, None] + torch.arange(w, device=x.device))[:, None, :]  # (B, 1, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows, cols]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()
