"""End-to-end scans of realistic and hostile archives built in the test."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path

import pytest

from graphrec.errors import ScanPathError
from graphrec.mining import Inventory, ScanLimits, scan
from mining.mining_builders import (
    MakeApk,
    elf_header,
    high_entropy,
    mark_encrypted,
    write_zip,
    zip_bytes,
)


def _models(inv: Inventory) -> dict[str, tuple[str, bool]]:
    return {m.location[-1] if len(m.location) > 1 else m.location[0]: (m.format, m.suspected)
            for m in inv.models}  # fmt: skip


def _issues(inv: Inventory) -> set[tuple[str, str]]:
    return {(i.kind, i.location[-1]) for i in inv.issues}


def test_apk_every_finding(
    tmp_path: Path, make_apk: MakeApk, onnx_bytes: bytes, ncnn_files: tuple[Path, Path]
) -> None:
    apk = make_apk(tmp_path / "app.apk")
    inv = scan([apk])
    assert inv.apps == [str(apk)]
    assert _models(inv) == {
        "assets/models/detector.onnx": ("onnx", False),
        "assets/models/classifier.tflite": ("tflite", False),
        "assets/models/scripted.pt": ("torchscript", False),
        "assets/models/mobile.ptl": ("pytorch-mobile", False),
        "assets/models/weights.safetensors": ("safetensors", False),
        "assets/ncnn/net.param": ("ncnn", False),
        "assets/hidden/blob.dat": ("onnx", False),  # found by content, not by name
        "assets/secret/face.tflite": ("tflite", True),  # encrypted: suspected, not dropped
        "inner/model.onnx": ("onnx", False),  # inside a nested zip
    }
    nested = next(m for m in inv.models if m.location[-1] == "inner/model.onnx")
    assert nested.location == (str(apk), "assets/packs/extra.zip", "inner/model.onnx")
    assert nested.path == f"{apk}!/assets/packs/extra.zip!/inner/model.onnx"
    onnx_sha = hashlib.sha256(onnx_bytes).hexdigest()
    assert {m.sha256 for m in inv.models if m.format == "onnx"} == {onnx_sha}
    assert all(m.size_bytes == len(onnx_bytes) for m in inv.models if m.format == "onnx")
    ncnn = next(m for m in inv.models if m.format == "ncnn")
    param, weights = (len(p.read_bytes()) for p in ncnn_files)
    assert ncnn.details["weights"] == {"file": "net.bin", "size_bytes": weights + 300_000}
    assert ncnn.size_bytes == param

    libs = {(x.location[-1], x.framework, x.abi, x.evidence) for x in inv.libraries}
    assert libs == {
        ("lib/arm64-v8a/libtensorflowlite_jni.so", "tflite", "arm64-v8a", "file name"),
        ("lib/armeabi-v7a/libtensorflowlite_jni.so", "tflite", "armeabi-v7a", "file name"),
        ("lib/arm64-v8a/libonnxruntime.so", "onnxruntime", "arm64-v8a", "file name"),
        ("lib/x86_64/libonnxruntime.so", "onnxruntime", "x86_64", "file name"),
        ("lib/arm64-v8a/libfoo.so", "ncnn", "arm64-v8a", "marker _ZN4ncnn"),
        ("lib/arm64-v8a/libMNN.so", "mnn", "arm64-v8a", "file name"),
        ("lib/arm64-v8a/libpytorch_jni_lite.so", "pytorch", "arm64-v8a", "file name"),
    }
    fw = inv.frameworks()[str(apk)]
    assert fw["tflite"] == {"arm64-v8a", "armeabi-v7a"}
    assert fw["onnxruntime"] == {"arm64-v8a", "x86_64"}
    assert inv.issues == []
    assert inv.stats.archives >= 2 and inv.stats.bytes_read > 0


def test_folder_of_apps_aggregate(tmp_path: Path, make_apk: MakeApk, onnx_bytes: bytes) -> None:
    apps = tmp_path / "apps"
    apps.mkdir()
    make_apk(apps / "a.apk")
    write_zip(apps / "b.apk", {"assets/same.onnx": onnx_bytes,
                               "lib/arm64-v8a/libncnn.so": elf_header(0xB7)})  # fmt: skip
    (apps / "loose.onnx").write_bytes(onnx_bytes)
    make_apk(tmp_path / "tmp.apk")
    (apps / "scripted.pt").write_bytes(
        zipfile.ZipFile(tmp_path / "tmp.apk").read("assets/models/scripted.pt")
    )
    inv = scan([apps])
    scripted = next(m for m in inv.models if m.format == "torchscript" and m.app == str(apps))
    assert scripted.location == (str(apps / "scripted.pt"),) and scripted.sha256 is not None
    assert sorted(inv.apps) == sorted([str(apps / "a.apk"), str(apps / "b.apk"), str(apps)])
    agg = inv.aggregate()
    assert agg.apps == 3
    assert agg.framework_apps["ncnn"] == 2  # libfoo.so marker in a.apk, libncnn.so in b.apk
    assert agg.framework_apps["tflite"] == 1
    shared = agg.shared_models[0]
    assert shared["sha256"] == hashlib.sha256(onnx_bytes).hexdigest()
    assert len(shared["apps"]) == 3
    assert agg.format_apps["onnx"] == 3
    assert sum(agg.size_buckets.values()) == sum(agg.format_models.values())
    assert agg.suspected == 1


def test_wheel_packages_and_libraries(tmp_path: Path, onnx_bytes: bytes) -> None:
    meta = (
        "Metadata-Version: 2.1\nName: facekit\nVersion: 1.2.0\n"
        "Requires-Dist: onnxruntime>=1.16\nRequires-Dist: numpy\n"
        "Requires-Dist: openvino ; extra == 'fast'\n\nLong description\n"
    )
    wheel = write_zip(
        tmp_path / "facekit-1.2.0-py3-none-manylinux_2_17_x86_64.whl",
        {
            "facekit/__init__.py": b"",
            "facekit/models/det.onnx": onnx_bytes,
            "facekit-1.2.0.dist-info/METADATA": meta.encode(),
            "facekit/_vendor/tflite_runtime/__init__.py": b"",
            "facekit/_vendor/tflite_runtime/_pywrap_tensorflow_interpreter_wrapper.so": elf_header(0x3E),
        },
    )  # fmt: skip
    inv = scan([wheel])
    pkgs = {(p.package, p.framework, p.version, p.evidence) for p in inv.packages}
    assert pkgs == {
        ("onnxruntime", "onnxruntime", ">=1.16", "Requires-Dist"),
        ("openvino", "openvino", None, "Requires-Dist (extra)"),
        ("tflite_runtime", "tflite", None, "package folder"),
    }
    assert [(x.framework, x.abi) for x in inv.libraries] == [("tflite", "x86_64")]
    assert [m.format for m in inv.models] == ["onnx"]


def test_tar_gz_and_disk_model_files(
    tmp_path: Path, onnx_bytes: bytes, tflite_bytes: bytes
) -> None:
    tgz = tmp_path / "firmware.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        for name, data in (("fw/models/a.onnx", onnx_bytes), ("fw/models/b.tflite", tflite_bytes),
                           ("fw/lib/libncnn.so", elf_header(0xB7))):  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    model = tmp_path / "single.tflite"
    model.write_bytes(tflite_bytes)
    plain_gz = tmp_path / "model.onnx.gz"
    plain_gz.write_bytes(gzip.compress(onnx_bytes))
    inv = scan([tgz, model, plain_gz])
    got = sorted((m.location[-1], m.format) for m in inv.models)
    assert got == sorted([("fw/models/a.onnx", "onnx"), ("fw/models/b.tflite", "tflite"),
                          ("model.onnx", "onnx"), (str(model), "tflite")])  # fmt: skip
    assert [(x.framework, x.abi) for x in inv.libraries] == [("ncnn", "arm64-v8a")]
    assert inv.issues == []


def test_spooling_to_disk_keeps_memory_bounded_and_cleans_up(
    tmp_path: Path, make_apk: MakeApk, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool_root = tmp_path / "tmp"
    spool_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool_root))
    apk = make_apk(tmp_path / "app.apk")
    small = scan([apk], limits=ScanLimits(in_memory_bytes=1024))
    big = scan([apk])
    assert _models(small) == _models(big)
    assert {m.sha256 for m in small.models} == {m.sha256 for m in big.models}
    assert list(spool_root.iterdir()) == []  # the private temp dir is gone


# -- hostile input ------------------------------------------------------------------------


def test_zip_bomb_by_ratio_is_recorded_and_scan_goes_on(tmp_path: Path, onnx_bytes: bytes) -> None:
    bomb = write_zip(tmp_path / "bomb.zip", {"zeros.bin": b"\0" * (8 << 20), "ok.onnx": onnx_bytes})
    inv = scan([bomb], limits=ScanLimits(max_ratio=100))
    assert ("compression-ratio", "zeros.bin") in _issues(inv)
    assert _models(inv) == {"ok.onnx": ("onnx", False)}
    assert inv.stats.bytes_read < (1 << 20)  # the bomb was never decompressed


def test_gzip_bomb_stream_is_stopped(tmp_path: Path) -> None:
    gz = tmp_path / "data.bin.gz"
    gz.write_bytes(gzip.compress(b"\0" * (16 << 20), 9))
    inv = scan([gz], limits=ScanLimits(max_ratio=50, ratio_min_bytes=1 << 16, head_bytes=1 << 20))
    assert [i.kind for i in inv.issues] == ["compression-ratio"]


def test_total_expanded_size_limit(tmp_path: Path, onnx_bytes: bytes) -> None:
    members = {f"assets/m{i}.onnx": onnx_bytes for i in range(20)}
    app = write_zip(tmp_path / "big.apk", members, zipfile.ZIP_STORED)
    other = write_zip(tmp_path / "other.apk", {"m.onnx": onnx_bytes})
    inv = scan([app, other], limits=ScanLimits(max_total_bytes=5 * len(onnx_bytes)))
    kinds = [(i.kind, i.app) for i in inv.issues]
    assert kinds == [("expanded-size-limit", str(app))]
    assert 0 < sum(m.app == str(app) for m in inv.models) < 20
    assert sum(m.app == str(other) for m in inv.models) == 1  # the next app is scanned


def test_nesting_depth_limit(tmp_path: Path, onnx_bytes: bytes) -> None:
    data = zip_bytes({"m.onnx": onnx_bytes})
    for level in range(6):
        data = zip_bytes({f"level{level}.zip": data, f"m{level}.onnx": onnx_bytes})
    path = tmp_path / "deep.zip"
    path.write_bytes(data)
    inv = scan([path], limits=ScanLimits(max_depth=3))
    depths = sorted(len(m.location) - 1 for m in inv.models)
    assert depths == [1, 2, 3]
    assert [i.kind for i in inv.issues] == ["nesting-depth"]
    assert len(inv.issues[0].location) == 4


def test_member_count_limit(tmp_path: Path) -> None:
    app = write_zip(tmp_path / "many.zip", {f"f{i}.txt": b"x" for i in range(50)})
    inv = scan([app], limits=ScanLimits(max_members=10))
    assert [i.kind for i in inv.issues] == ["member-count"]
    assert inv.stats.files == 1 + 10  # the archive itself and the first ten members


def test_traversal_names_are_scanned_never_extracted(
    tmp_path: Path, onnx_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    evil = write_zip(tmp_path / "evil.zip", {"../../evil.onnx": onnx_bytes,
                                             "/abs/evil2.onnx": onnx_bytes,
                                             "..\\win\\evil3.onnx": onnx_bytes})  # fmt: skip
    before = set(tmp_path.rglob("*"))
    inv = scan([evil], limits=ScanLimits(in_memory_bytes=16))  # force spooling too
    assert {k for k, _ in _issues(inv)} == {"path-traversal"}
    assert len(inv.issues) == 3
    assert sorted(m.format for m in inv.models) == ["onnx"] * 3
    assert set(tmp_path.rglob("*")) == before  # nothing written anywhere
    assert not (tmp_path.parent / "evil.onnx").exists()


def test_symlinks_in_zip_tar_and_folders(tmp_path: Path, onnx_bytes: bytes) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        link = zipfile.ZipInfo("link.onnx")
        link.external_attr = (0o120777 << 16) | 0x20
        zf.writestr(link, "/etc/passwd")
        zf.writestr("real.onnx", onnx_bytes)
    (tmp_path / "links.zip").write_bytes(buf.getvalue())
    tar_path = tmp_path / "links.tar"
    with tarfile.open(tar_path, "w") as tf:
        for name, kind in (
            ("sym", tarfile.SYMTYPE),
            ("hard", tarfile.LNKTYPE),
            ("dev", tarfile.CHRTYPE),
        ):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = "/etc/shadow"
            tf.addfile(info)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(onnx_bytes)
    os.symlink("/etc/hostname", folder / "escape.onnx")
    os.symlink("/", folder / "rootdir")
    inv = scan([tmp_path / "links.zip", tar_path, folder])
    kinds = sorted((i.kind, Path(i.location[-1]).name) for i in inv.issues)
    assert kinds == [("hardlink", "hard"), ("special-file", "dev"), ("symlink", "escape.onnx"),
                     ("symlink", "link.onnx"), ("symlink", "rootdir"), ("symlink", "sym")]  # fmt: skip
    assert "'/etc/passwd'" in next(i.detail for i in inv.issues if i.location[-1] == "link.onnx")
    assert sorted(Path(m.location[-1]).name for m in inv.models) == ["model.onnx", "real.onnx"]


def test_truncated_and_corrupt_archives(
    tmp_path: Path, make_apk: MakeApk, onnx_bytes: bytes
) -> None:
    apk = make_apk(tmp_path / "full.apk").read_bytes()
    cut = tmp_path / "cut.apk"
    cut.write_bytes(apk[: len(apk) // 2])
    tgz_buf = io.BytesIO()
    with tarfile.open(fileobj=tgz_buf, mode="w:gz") as tf:
        for i in range(4):  # incompressible padding so that a cut keeps the first members whole
            for name, data in (
                (f"m{i}.onnx", onnx_bytes),
                (f"pad{i}.bin", high_entropy(50_000, i)),
            ):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    cut_tgz = tmp_path / "cut.tar.gz"
    cut_tgz.write_bytes(tgz_buf.getvalue()[: len(tgz_buf.getvalue()) * 3 // 4])
    # a member whose compressed bytes are damaged: CRC / inflate error
    good = zip_bytes({"a.onnx": onnx_bytes, "b.onnx": onnx_bytes})
    damaged = bytearray(good)
    start = damaged.find(b"a.onnx") + len("a.onnx") + 10
    damaged[start : start + 50] = bytes(50)
    bad_member = tmp_path / "damaged.zip"
    bad_member.write_bytes(bytes(damaged))
    nested = write_zip(tmp_path / "outer.zip", {"inner.zip": apk[:1000], "ok.onnx": onnx_bytes})
    inv = scan([cut, cut_tgz, bad_member, nested])
    kinds = {(i.kind, Path(i.location[0]).name) for i in inv.issues}
    assert ("corrupt-archive", "cut.apk") in kinds
    assert ("corrupt-archive", "cut.tar.gz") in kinds
    assert ("corrupt-member", "damaged.zip") in kinds
    assert ("corrupt-archive", "outer.zip") in kinds  # the truncated inner zip
    # the scan went on: the readable parts were still found
    assert any(m.location[-1] == "b.onnx" for m in inv.models)
    assert any(m.location[-1] == "ok.onnx" for m in inv.models)
    assert {m.location[-1] for m in inv.models if m.app == str(cut_tgz)} == {
        "m0.onnx",
        "m1.onnx",
        "m2.onnx",
    }


def test_password_protected_entries(tmp_path: Path, onnx_bytes: bytes) -> None:
    data = zip_bytes(
        {"assets/model.tflite": b"\x13" * 500, "readme.txt": b"hi", "ok.onnx": onnx_bytes}
    )
    data = mark_encrypted(mark_encrypted(data, "assets/model.tflite"), "readme.txt")
    path = tmp_path / "locked.apk"
    path.write_bytes(data)
    inv = scan([path])
    assert sorted(_issues(inv)) == [("encrypted-entry", "assets/model.tflite"),
                                    ("encrypted-entry", "readme.txt")]  # fmt: skip
    suspected = [m for m in inv.models if m.suspected]
    assert [(m.format, m.sha256) for m in suspected] == [("tflite", None)]
    assert [m.location[-1] for m in inv.models if not m.suspected] == ["ok.onnx"]


def test_huge_member_only_header_read(tmp_path: Path, onnx_bytes: bytes) -> None:
    app = write_zip(tmp_path / "huge.apk", {"big.onnx": onnx_bytes + b"\0" * 200_000})
    inv = scan([app], limits=ScanLimits(max_member_bytes=100_000, head_bytes=4096))
    assert [i.kind for i in inv.issues] == ["huge-file"]
    [m] = inv.models
    assert m.sha256 is None and m.details["header_only"] is True


def test_unrelated_bytes_never_crash(tmp_path: Path) -> None:
    rng_bytes = zlib.compress(b"x")  # a zlib stream is not a zip/tar/gzip
    junk = {"a.tflite": b"\0\0\0\0TFL3\xff\xff", "b.onnx": b"\x08\x07\x12\xff",
            "c.mnn": b"\x18\0\0\0" * 3, "d.pb": b"\x0a\xff\xff\xff", "e.gguf": b"GGUF\x03",
            "f.safetensors": b"\xff" * 9, "g.zip": b"PK\x03\x04" + rng_bytes,
            "h.nb": b"\x02\0", "i.json": b"{not json modelTopology", "j.pte": b"\0\0\0\0ET12"}  # fmt: skip
    app = write_zip(tmp_path / "junk.apk", junk)
    inv = scan([app])
    assert all(m.suspected for m in inv.models)
    assert {i.kind for i in inv.issues} <= {"corrupt-archive", "analysis-error"}


def test_missing_path_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(ScanPathError, match="no such file"):
        scan([tmp_path / "nope.apk"])
    with pytest.raises(ScanPathError):
        scan([])
