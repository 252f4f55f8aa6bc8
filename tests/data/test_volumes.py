"""Volumes from .npy / .npz / DICOM series, HU windows, and the ``ct_volume`` source's slabs."""

import sys

import numpy as np
import pytest
import tomli_w
import torch

from proxlab.data import load_volume, read_dicom_series, scale_volume
from proxlab.experiments.config import ConfigError, loads_config
from proxlab.experiments.parts import SOURCES


# ---------------------------------------------------------------- .npy / .npz
def test_npy_and_npz_round_trip(tmp_path):
    a = np.random.default_rng(0).integers(-1024, 3000, size=(5, 6, 7)).astype(np.int16)
    np.save(tmp_path / "v.npy", a)
    np.savez(tmp_path / "one.npz", a)
    np.savez(tmp_path / "two.npz", ct=a, mask=a > 0)
    for vol in (load_volume(tmp_path / "v.npy"), load_volume(tmp_path / "one.npz"),
                load_volume(tmp_path / "two.npz", key="ct")):
        assert vol.dtype == torch.float32 and vol.shape == (5, 6, 7)
        assert torch.equal(vol, torch.from_numpy(a.astype(np.float32)))


def test_npz_key_errors(tmp_path):
    np.savez(tmp_path / "two.npz", ct=np.zeros((2, 3, 3)), mask=np.ones((2, 3, 3)))
    with pytest.raises(ValueError, match=r"key: .* holds 2 arrays, so name one of \['ct', 'mask'\]"):
        load_volume(tmp_path / "two.npz")
    with pytest.raises(ValueError, match=r"key: expected one of \['ct', 'mask'\] .*got 'img'"):
        load_volume(tmp_path / "two.npz", key="img")


def test_bad_files(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"expected an array of 3 dimensions \(S, H, W\), got shape \(4, 4\)"):
        load_volume(tmp_path / "flat.npy")
    with pytest.raises(ValueError, match=r"path: expected a \.npy or \.npz file, got .*v\.mat"):
        load_volume(tmp_path / "v.mat")
    with pytest.raises(FileNotFoundError, match="path: no such file"):
        load_volume(tmp_path / "absent.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):  # never unpickled
        load_volume(tmp_path / "obj.npy")


def test_scale_volume_window():
    hu = torch.tensor([[[-1000.0, -160.0, 40.0, 240.0, 1500.0]]])
    out = scale_volume(hu, -160, 240)
    assert torch.allclose(out, torch.tensor([[[0.0, 0.0, 0.5, 1.0, 1.0]]]), atol=1e-7)
    with pytest.raises(ValueError, match=r"low < high, got low=240, high=-160"):
        scale_volume(hu, 240, -160)


# ---------------------------------------------------------------- DICOM
def _write_series(folder, slices, positions, instances, rows_cols=None, slope=2.0, intercept=-1024.0, names=None):
    """One CT series of int16 slices written with pydicom (position along z; rows_cols overrides a slice's size)."""
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(exist_ok=True)
    series = generate_uid()
    for i, (img, z, inst) in enumerate(zip(slices, positions, instances)):
        if rows_cols and i in rows_cols:
            img = np.zeros(rows_cols[i], dtype=np.int16)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        name = names[i] if names else f"slice{i}.dcm"
        ds = FileDataset(str(folder / name), {}, file_meta=meta, preamble=b"\0" * 128)
        if int(pydicom.__version__.split(".")[0]) < 3:
            ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.SeriesInstanceUID = series
        ds.Modality = "CT"
        ds.InstanceNumber = inst
        if z is not None:
            ds.ImagePositionPatient = [-10.0, -20.0, float(z)]
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.7, 0.8]
        ds.SliceThickness = 2.5
        ds.Rows, ds.Columns = img.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        ds.PixelData = np.ascontiguousarray(img, dtype="<i2").tobytes()
        ds.save_as(str(folder / name))


def _stored(n=4):
    rng = np.random.default_rng(1)
    return [rng.integers(-500, 1500, size=(8, 8)).astype(np.int16) for _ in range(n)]


def test_dicom_series_sorted_by_position_in_hu(tmp_path):
    stored = _stored()
    # file i lies at z = zs[i]; instance numbers run against z, so only the positions give the right order
    zs = [7.5, -2.5, 12.5, 2.5]
    names = ["b.dcm", "d.dcm", "a.dcm", "c.dcm"]
    _write_series(tmp_path, stored, zs, instances=[4, 1, 3, 2], names=names)
    (tmp_path / "notes.txt").write_text("not a DICOM file")
    vol, info = read_dicom_series(tmp_path)
    order = np.argsort(zs)  # ascending z: d, c, b, a
    expect = np.stack([stored[i].astype(np.float64) * 2.0 - 1024.0 for i in order])
    assert vol.dtype == torch.float32 and vol.shape == (4, 8, 8)
    assert torch.equal(vol, torch.from_numpy(expect.astype(np.float32)))  # small integers: exact in float32
    assert info["files"] == ["d.dcm", "c.dcm", "b.dcm", "a.dcm"] and info["sorted_by"] == "ImagePositionPatient"
    assert info["slice_positions"] == pytest.approx([-2.5, 2.5, 7.5, 12.5])
    assert info["pixel_spacing"] == pytest.approx((0.7, 0.8)) and info["modality"] == "CT"
    assert info["skipped"] == ["notes.txt"]


def test_dicom_series_falls_back_to_instance_number(tmp_path):
    stored = _stored(3)
    _write_series(tmp_path, stored, [None] * 3, instances=[3, 1, 2])
    vol, info = read_dicom_series(tmp_path)
    assert info["sorted_by"] == "InstanceNumber" and info["slice_positions"] is None
    assert info["files"] == ["slice1.dcm", "slice2.dcm", "slice0.dcm"]
    assert torch.equal(vol[0], torch.from_numpy(stored[1].astype(np.float32) * 2 - 1024))


def test_dicom_series_mismatched_sizes(tmp_path):
    _write_series(tmp_path, _stored(3), [0.0, 1.0, 2.0], [1, 2, 3], rows_cols={2: (8, 6)})
    with pytest.raises(ValueError, match=r"same Rows x Columns; 'slice2\.dcm' is 8x6, 'slice0\.dcm' is 8x8"):
        read_dicom_series(tmp_path)


def test_dicom_without_pydicom(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pydicom", None)  # import pydicom now fails, as when it is not installed
    with pytest.raises(ImportError, match=r'pip install "proxlab\[dicom\]"'):
        read_dicom_series(tmp_path)


def test_dicom_folder_without_images(tmp_path):
    pytest.importorskip("pydicom")
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(ValueError, match="no DICOM image files"):
        read_dicom_series(tmp_path)


# ---------------------------------------------------------------- the ct_volume source
def _data(**options):
    """A validated [data] section for source ct_volume (through the experiment spec)."""
    spec = {"name": "ct", "data": {"source": "ct_volume", "options": options},
            "operator": {"task": "denoise", "noise": 0.1}, "model": {"name": "dncnn"}}
    return loads_config(tomli_w.dumps(spec)).data


def _ramp_volume(tmp_path, depth=60):
    """Slice s of the volume is filled with the value 10 s (int16), so every slice says where it came from."""
    vol = (10 * np.arange(depth, dtype=np.int16))[:, None, None] * np.ones((1, 6, 6), dtype=np.int16)
    path = tmp_path / "ramp.npy"
    np.save(path, vol)
    return path


def test_ct_volume_slabs(tmp_path):
    path = _ramp_volume(tmp_path)
    cfg = _data(path=str(path), scale=600.0, train=[0, 30], val=[35, 45], test=[50, 60])
    sp = SOURCES.get("ct_volume").build(cfg, 0)
    for x, (a, b) in ((sp.train, (0, 30)), (sp.val, (35, 45)), (sp.test, (50, 60))):
        assert x.shape == (b - a, 1, 6, 6) and x.dtype == torch.float32
        assert torch.allclose(x[:, 0, 0, 0], torch.arange(a, b) * 10 / 600.0, atol=1e-6)
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert sp.test_names[0] == "slice-50" and len(sp.test_names) == 10


def test_ct_volume_window_and_size(tmp_path):
    path = _ramp_volume(tmp_path)
    cfg = _data(path=str(path), window=[100, 300], train=[0, 20], val=[25, 30], test=[35, 40], size=12)
    sp = SOURCES.get("ct_volume").build(cfg, 0)
    assert sp.train.shape == (20, 1, 12, 12)  # constant slices stay constant under the resize
    assert torch.allclose(sp.train[:, 0, 5, 7], ((10 * torch.arange(20.0)).clamp(100, 300) - 100) / 200, atol=1e-6)
    assert float(sp.test.min()) == pytest.approx(1.0)  # 350..390 HU-like values clip at the window's top


@pytest.mark.parametrize("slabs, match", [
    ({"val": [28, 45]}, r"data\.options: val: .*at least min_gap = 5 slices after train ends \(>= 35\).*overlapping"),
    ({"val": [30, 45]}, r"data\.options: val: .*got \[30, 45\]"),  # adjacent: no gap
    ({"test": [47, 60]}, r"data\.options: test: .*after val ends \(>= 50\)"),
    ({"train": [10, 10]}, r"data\.options: train: expected a non-empty slab"),
    ({"val": [50, 55], "test": [35, 45]}, r"data\.options: test: "),  # out of order
])
def test_ct_volume_refuses_close_slabs(tmp_path, slabs, match):
    path = _ramp_volume(tmp_path)
    options = {"path": str(path), "scale": 600.0, "train": [0, 30], "val": [35, 45], "test": [50, 60], **slabs}
    with pytest.raises(ConfigError, match=match):
        _data(**options)


def test_ct_volume_refuses_slabs_outside_the_volume(tmp_path):
    cfg = _data(path=str(_ramp_volume(tmp_path)), scale=600.0, train=[0, 30], val=[35, 45], test=[50, 61])
    with pytest.raises(ValueError, match=r"data\.options\.test: expected a slab inside the volume's 60 slices"):
        SOURCES.get("ct_volume").build(cfg, 0)


def test_ct_volume_refuses_a_small_scale_and_both_scalings(tmp_path):
    path = _ramp_volume(tmp_path)
    cfg = _data(path=str(path), scale=100.0, train=[0, 30], val=[35, 45], test=[50, 60])
    with pytest.raises(ValueError, match=r"data\.options\.scale: .* span \[0, 2\.9\], expected values in \[0, 1\]"):
        SOURCES.get("ct_volume").build(cfg, 0)
    with pytest.raises(ConfigError, match=r"scale, window: expected one of them"):
        _data(path=str(path), scale=100.0, window=[0, 1])


def test_ct_volume_from_a_dicom_folder(tmp_path):
    stored = _stored(12)
    _write_series(tmp_path / "series", stored, [float(z) for z in range(12)], list(range(1, 13)))
    cfg = _data(path=str(tmp_path / "series"), window=[-2000, 2000], train=[0, 4], val=[5, 7], test=[8, 12],
                min_gap=1)
    sp = SOURCES.get("ct_volume").build(cfg, 0)
    hu = torch.from_numpy(stored[8].astype(np.float32) * 2 - 1024)
    assert torch.allclose(sp.test[0, 0], (hu + 2000) / 4000, atol=1e-6)


def test_ct_stent_volume_default_slabs(shared_data):
    path = shared_data / "CT_stent" / "stent.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    sp = SOURCES.get("ct_volume").build(_data(path=str(path), scale=2000.0), 0)
    assert (sp.train.shape, sp.val.shape, sp.test.shape) == ((180, 1, 128, 128), (25, 1, 128, 128), (31, 1, 128, 128))
    raw = load_volume(path)
    assert torch.allclose(sp.val[0, 0], raw[190] / 2000) and torch.allclose(sp.test[-1, 0], raw[255] / 2000)
    assert (float(sp.train.min()), float(sp.train.max())) == pytest.approx((0.0, 1.0))


def test_ct_volume_expands_the_home_folder_and_points_to_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    path = _ramp_volume(tmp_path)
    cfg = _data(path="~/ramp.npy", scale=600.0, train=[0, 30], val=[35, 45], test=[50, 60])
    assert SOURCES.get("ct_volume").build(cfg, 0).test.shape == (10, 1, 6, 6) and path.is_file()
    cfg = _data(path="~/nowhere/stent.npz", scale=2000.0)
    with pytest.raises(FileNotFoundError, match=r"python -m proxlab\.data\.ct_stent"):
        SOURCES.get("ct_volume").build(cfg, 0)
