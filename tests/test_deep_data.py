"""deep.data: IDX and CIFAR-10 binary parsers, synthetic teacher, bundles, augmentation."""

import gzip
import itertools
import logging
import struct

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from perceptron_theory.deep import data  # noqa: E402
from perceptron_theory.deep.data import (  # noqa: E402
    augment,
    iterate_minibatches,
    load_cifar10,
    load_fashion_mnist,
    make_dataset,
    read_idx,
    synthetic_teacher,
)

pytestmark = pytest.mark.deep

_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}


def write_idx(path, arr, *, gz=False):
    """Write ``arr`` in the IDX format (big-endian), optionally gzipped."""
    arr = np.asarray(arr)
    header = bytes([0, 0, _CODES[arr.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I",
                                                                      *arr.shape)
    raw = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def write_fashion(directory, n_train=7, n_test=3, *, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for split, stem, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        img = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        lab = rng.integers(0, 10, size=n, dtype=np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(directory / f"{stem}-images-idx3-ubyte{suffix}", img, gz=gz)
        write_idx(directory / f"{stem}-labels-idx1-ubyte{suffix}", lab, gz=gz)
        out[split] = (img, lab)
    return out


# ----------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_idx_round_trip(tmp_path, gz, dtype):
    arr = (np.arange(2 * 3 * 5) * 7 - 20).astype(dtype).reshape(2, 3, 5)
    if dtype == np.uint8:
        arr = (np.arange(30) * 7 % 256).astype(np.uint8).reshape(2, 3, 5)
    got = read_idx(write_idx(tmp_path / "a.idx", arr, gz=gz))
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, arr)


def test_idx_corrupt_files_name_the_file(tmp_path):
    good = write_idx(tmp_path / "good", np.zeros((4, 2), np.uint8))
    raw = good.read_bytes()
    cases = {
        "badmagic": b"\x01\x02" + raw[2:],
        "badtype": raw[:2] + b"\x07" + raw[3:],
        "short": raw[:-1],
        "long": raw + b"\x00",
        "header": raw[:6],
        "tiny": b"\x00",
        "badgz": gzip.compress(raw)[:-6],
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=name):
            read_idx(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="nothere"):
        read_idx(tmp_path / "nothere")


# ----------------------------------------------------------------------------- Fashion-MNIST


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_loader_on_written_files(tmp_path, gz):
    written = write_fashion(tmp_path, gz=gz)
    for split in ("train", "test"):
        x, y = load_fashion_mnist(tmp_path, split=split)
        img, lab = written[split]
        assert x.dtype == torch.uint8 and y.dtype == torch.int64
        assert tuple(x.shape) == (len(lab), 1, 28, 28)
        np.testing.assert_array_equal(x[:, 0].numpy(), img)
        np.testing.assert_array_equal(y.numpy(), lab)


def test_fashion_mnist_missing_and_inconsistent_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte.*apt-get install -y "
                                                r"dataset-fashion-mnist.*--data-dir"):
        load_fashion_mnist(tmp_path, split="train")
    write_fashion(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(3, np.uint8), gz=True)
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz holds 3 labels"):
        load_fashion_mnist(tmp_path, split="train")
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(3, 10, np.uint8), gz=True)
    with pytest.raises(ValueError, match="t10k-labels.*label 10 outside"):
        load_fashion_mnist(tmp_path, split="test")
    with pytest.raises(ValueError, match="split must be one of train, test; got 'val'"):
        load_fashion_mnist(tmp_path, split="val")


@pytest.mark.skipif(not (data.FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists()
                    and not (data.FASHION_MNIST_DIR / "t10k-images-idx3-ubyte").exists(),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist():
    x, y = load_fashion_mnist(split="train")
    assert tuple(x.shape) == (60000, 1, 28, 28) and tuple(y.shape) == (60000,)
    assert torch.bincount(y).tolist() == [6000] * 10
    x, y = load_fashion_mnist(split="test")
    assert tuple(x.shape) == (10000, 1, 28, 28)
    assert torch.bincount(y).tolist() == [1000] * 10


# ----------------------------------------------------------------------------- CIFAR-10


def write_cifar(directory, counts=(3, 2, 2, 1, 2), n_test=4, seed=0):
    rng = np.random.default_rng(seed)
    out = {"train": [], "test": []}
    names = [(f"data_batch_{i + 1}.bin", "train", c) for i, c in enumerate(counts)]
    for name, split, n in names + [("test_batch.bin", "test", n_test)]:
        rec = rng.integers(0, 256, size=(n, 3073), dtype=np.uint8)
        rec[:, 0] = rng.integers(0, 10, size=n)
        (directory / name).write_bytes(rec.tobytes())
        out[split].append(rec)
    return {k: np.concatenate(v) for k, v in out.items()}


def test_cifar10_binary_round_trip(tmp_path):
    records = write_cifar(tmp_path)
    for split in ("train", "test"):
        x, y = load_cifar10(tmp_path, split)
        rec = records[split]
        assert tuple(x.shape) == (len(rec), 3, 32, 32) and x.dtype == torch.uint8
        np.testing.assert_array_equal(y.numpy(), rec[:, 0])
        # Channel-major layout: bytes 1..1024 are red, row-major.
        np.testing.assert_array_equal(x[:, 0].reshape(len(rec), -1).numpy(), rec[:, 1:1025])
        np.testing.assert_array_equal(x[:, 2, 31, 31].numpy(), rec[:, -1])


def test_cifar10_errors_name_the_file(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "data_batch_3.bin").write_bytes(b"\x00" * 3072)
    with pytest.raises(ValueError, match=r"data_batch_3\.bin.*3073"):
        load_cifar10(tmp_path, "train")
    (tmp_path / "test_batch.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"test_batch\.bin"):
        load_cifar10(tmp_path, "test")
    with pytest.raises(ValueError, match="data_dir"):
        load_cifar10(None, "test")


def test_cifar10_bundle(tmp_path):
    write_cifar(tmp_path, counts=(4, 4, 4, 4, 4), n_test=3)
    b = make_dataset("cifar10", data_dir=tmp_path, val_fraction=0.25)
    assert (len(b.train_y), len(b.val_y), len(b.test_y)) == (15, 5, 3)
    assert (b.in_channels, b.image_size, b.num_classes) == (3, 32, 10)
    mean = b.train_x.mean(dim=(0, 2, 3))
    std = b.train_x.std(dim=(0, 2, 3))
    torch.testing.assert_close(mean, torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(std, torch.ones(3), atol=1e-4, rtol=0)


# ----------------------------------------------------------------------------- synthetic


def test_synthetic_teacher_is_deterministic_and_uses_all_classes():
    x1, y1 = synthetic_teacher(2000, seed=3)
    x2, y2 = synthetic_teacher(2000, seed=3)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    x3, y3 = synthetic_teacher(2000, seed=4)
    assert not torch.equal(x1, x3)
    # The teacher is fixed: the first samples of a longer draw get the same labels.
    _, y_short = synthetic_teacher(50, seed=3)
    assert torch.equal(y_short, y1[:50])
    counts = torch.bincount(y1, minlength=10)
    assert counts.min() >= 40, counts  # every class present (balanced would be 200)
    _, y_other = synthetic_teacher(2000, seed=3, teacher_seed=1)
    assert (y_other != y1).float().mean() > 0.5
    x, y = synthetic_teacher(5, seed=0, image_size=8, in_channels=3, num_classes=4)
    assert tuple(x.shape) == (5, 3, 8, 8) and int(y.max()) < 4


def test_make_dataset_synthetic_split_and_determinism():
    b1 = make_dataset("synthetic", subset=500, test_subset=100, seed=2, val_fraction=0.2)
    b2 = make_dataset("synthetic", subset=500, test_subset=100, seed=2, val_fraction=0.2)
    assert (len(b1.train_y), len(b1.val_y), len(b1.test_y)) == (400, 100, 100)
    for split in ("train", "val", "test"):
        assert torch.equal(b1.split(split)[0], b2.split(split)[0])
        assert torch.equal(b1.split(split)[1], b2.split(split)[1])
    assert b1.to_dict()["n_train"] == 400 and b1.name == "synthetic"
    torch.testing.assert_close(b1.train_x.mean(), torch.tensor(0.0), atol=1e-5, rtol=0)
    torch.testing.assert_close(b1.train_x.std(), torch.tensor(1.0), atol=1e-4, rtol=0)


def test_auto_falls_back_to_synthetic_with_notice(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="perceptron_theory.deep.data"):
        b = make_dataset("auto", data_dir=tmp_path, subset=100, test_subset=20)
    assert b.name == "synthetic"
    assert "apt-get install -y dataset-fashion-mnist" in caplog.text
    write_fashion(tmp_path, n_train=20, n_test=5)
    b = make_dataset("auto", data_dir=tmp_path, val_fraction=0.25)
    assert b.name == "fashion-mnist" and (len(b.train_y), len(b.val_y)) == (15, 5)


def test_amplitude_scales_inputs_and_snr_is_a_variance_ratio():
    kw = dict(subset=1000, test_subset=200, seed=1)
    clean = make_dataset("synthetic", **kw)
    loud = make_dataset("synthetic", amplitude=3.0, **kw)
    torch.testing.assert_close(loud.train_x, 3.0 * clean.train_x)
    assert torch.equal(loud.train_y, clean.train_y)
    for snr in (0.5, 4.0):
        noisy = make_dataset("synthetic", amplitude=2.0, snr=snr, **kw)
        signal = 2.0 * clean.train_x
        noise = noisy.train_x - signal
        # 900 * 256 pixels: the variance ratio has a relative stderr of ~0.3%.
        measured = float(signal.var() / noise.var())
        assert measured == pytest.approx(snr, rel=0.02)
        assert float(noise.mean()) == pytest.approx(0.0, abs=0.02 * (2.0 / snr ** 0.5))
        assert not torch.equal(noisy.test_x, 2.0 * clean.test_x)


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="mnist"), "name must be one of fashion-mnist, cifar10, synthetic, auto"),
    (dict(name="synthetic", val_fraction=1.0), r"val_fraction must be in \[0, 1\)"),
    (dict(name="synthetic", amplitude=0.0), r"amplitude must be in \(0, inf\)"),
    (dict(name="synthetic", snr=-1.0), r"snr must be in \(0, inf\)"),
    (dict(name="synthetic", subset=1), r"subset must be an integer in \[2, inf\)"),
    (dict(name="synthetic", seed=-1), "seed"),
    (dict(name="cifar10"), "data_dir"),
])
def test_make_dataset_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_dataset(**kwargs)


def test_subset_larger_than_data_set(tmp_path):
    write_fashion(tmp_path, n_train=10, n_test=2)
    with pytest.raises(ValueError, match=r"subset must be an integer in \[2, 10\]"):
        make_dataset("fashion-mnist", data_dir=tmp_path, subset=11)


# ----------------------------------------------------------------------------- batching


def test_iterate_minibatches_is_a_seeded_permutation():
    g = torch.Generator().manual_seed(0)
    batches = list(iterate_minibatches(10, 4, generator=g))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
    g = torch.Generator().manual_seed(0)
    assert all(torch.equal(a, b) for a, b in
               zip(batches, iterate_minibatches(10, 4, generator=g), strict=True))
    assert [len(b) for b in iterate_minibatches(10, 4, drop_last=True)] == [4, 4]
    with pytest.raises(ValueError, match="batch_size"):
        list(iterate_minibatches(10, 0))


def test_augment_shapes_determinism_and_candidates():
    x = torch.randn(6, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    a1 = augment(x, torch.Generator().manual_seed(5))
    a2 = augment(x, torch.Generator().manual_seed(5))
    assert a1.shape == x.shape and a1.dtype == x.dtype and torch.equal(a1, a2)
    assert not torch.equal(a1, augment(x, torch.Generator().manual_seed(6)))
    assert torch.equal(augment(x, torch.Generator(), flip=False, pad=0), x)
    # Each output is one of the 2 * 9 * 9 flipped / shifted crops of its input.
    pad = 4
    for xi, ai in zip(x, a1, strict=True):
        found = False
        for flip, dy, dx in itertools.product((False, True), range(9), range(9)):
            src = xi.flip(-1) if flip else xi
            padded = torch.nn.functional.pad(src, (pad,) * 4)
            if torch.equal(padded[:, dy:dy + 8, dx:dx + 8], ai):
                found = True
                break
        assert found
    with pytest.raises(ValueError, match="pad"):
        augment(x, torch.Generator(), pad=-1)
