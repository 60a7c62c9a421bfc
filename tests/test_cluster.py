"""make-dataset as shards joined by virtual datasets, on a real local Ray instance and without."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from blurgen import cluster
from blurgen.cli.main import cli
from blurgen.cluster import (
    ClusterError,
    consolidate,
    join_shards,
    plan_shards,
    shard_folder,
    shard_name,
    write_shard,
)
from blurgen.h5 import open_pairs, read_shard, verify_pairs
from blurgen.kernels.camera import CameraModel
from blurgen.pipeline import DatasetConfig, bundled_images, make_dataset
from blurgen.torch import PairsDataset

CONFIG = DatasetConfig(patch=32, per_image=20, kernel_size=9)
SHARD = 32  # pairs per shard: one job, so a source's 20 samples span two shards


def sources(folder):
    """Bundled photos with a too-small and a corrupt image among them."""
    folder.mkdir()
    tiny, corrupt = folder / "tiny.png", folder / "corrupt.png"
    cv2.imwrite(str(tiny), np.zeros((20, 20, 3), np.uint8))
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    photos = [str(p) for p in bundled_images()]
    return [*photos[:2], str(tiny), *photos[2:4], str(corrupt)]


def shards_in_process(paths, output, config=CONFIG, seed=5):
    """What make_dataset_ray does, without Ray: every shard written here, then joined."""
    folder = shard_folder(output)
    folder.mkdir()
    summaries = [
        write_shard(str(folder / shard_name(n)), shard, config, seed)
        for n, shard in enumerate(plan_shards(paths, config.per_image, SHARD))
    ]
    join_shards(output, paths, config, seed, summaries)
    return summaries


def assert_same_file(local, other, virtual):
    """Every dataset and root attribute equal; the per-sample ones virtual or not."""
    with h5py.File(local, "r") as a, open_pairs(other) as b:
        assert sorted(a) == sorted(b)
        for name in a:
            assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
            assert np.array_equal(a[name][...], b[name][...]), name
        assert b["sharp"].is_virtual == virtual and not b["sources"].is_virtual
        extra = {"shards"} if virtual else set()
        assert set(b.attrs) == set(a.attrs) | extra
        for key in a.attrs:
            assert a.attrs[key] == b.attrs[key], key


@pytest.fixture(scope="module")
def local_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("local")
    paths = sources(folder / "in")
    make_dataset(paths, folder / "local.h5", CONFIG, 5)
    return paths, folder / "local.h5"


def test_shards_joined_read_as_the_local_file(local_file, tmp_path):
    paths, local = local_file
    output = tmp_path / "pairs.h5"
    summaries = shards_in_process(paths, output)
    # 6 sources x 20 samples in jobs of 32; the tiny (3rd) and corrupt (6th) images skipped.
    assert [s["pairs"] for s in summaries] == [32, 12, 32, 4]
    assert_same_file(local, output, virtual=True)
    info, problems = verify_pairs(output)
    assert problems == [] and info["shards"] == 4 and info["pairs"] == 80
    assert [entry["path"] for entry in info["skipped"]] == paths[2::3]
    # The shards' names are relative to the file: the folder can move.
    moved = tmp_path / "moved"
    moved.mkdir()
    output.rename(moved / output.name)
    shard_folder(output).rename(shard_folder(moved / output.name))
    with h5py.File(local, "r") as f:
        expected = f["blurred"][40]
    dataset = PairsDataset([moved / output.name])
    assert len(dataset) == 80
    assert np.array_equal(dataset[40]["blurred"].permute(1, 2, 0).mul(255).round(), expected)


def test_consolidate_writes_the_local_file(local_file, tmp_path):
    paths, local = local_file
    output = tmp_path / "pairs.h5"
    shards_in_process(paths, output)
    consolidate(output)
    assert not shard_folder(output).exists()
    assert_same_file(local, output, virtual=False)
    with h5py.File(local, "r") as a, h5py.File(output, "r") as b:
        for name in a:
            assert (a[name].chunks, a[name].compression, a[name].maxshape) == (
                b[name].chunks, b[name].compression, b[name].maxshape), name  # fmt: skip
    with pytest.raises(ValueError, match="already one ordinary file"):
        consolidate(output)


@pytest.mark.parametrize("readout", [(0.0, 0.0), (0.5, 1.0)])
def test_camera_shake_shards_join_and_consolidate_as_the_local_file(tmp_path, readout):
    config = DatasetConfig(patch=32, per_image=20, kernel_size=9,
                           mix=(("motion", 1), ("camera", 1)),
                           camera=CameraModel(readout=readout))  # fmt: skip
    paths = [str(p) for p in bundled_images()[:2]]
    make_dataset(paths, tmp_path / "local.h5", config, 5)
    output = tmp_path / "pairs.h5"
    shards_in_process(paths, output, config)
    assert_same_file(tmp_path / "local.h5", output, virtual=True)
    assert verify_pairs(output)[1] == []
    consolidate(output)
    assert_same_file(tmp_path / "local.h5", output, virtual=False)
    with h5py.File(output, "r") as f:
        assert f["kernel_field"].shape == (40, 4, 4, 9, 9)
        assert ("camera_readout" in f) == (readout[1] > 0)


def test_video_shards_join_and_consolidate_as_the_local_file(tmp_path):
    from test_video import pan, write_video

    from blurgen.pipeline import with_sources

    paths = []
    for seed in range(2):
        paths.append(str(tmp_path / f"clip{seed}.mkv"))
        write_video(paths[-1], pan(2 + seed, 14, seed=seed))
    paths.append(str(bundled_images()[0]))  # a photo among them
    config = DatasetConfig(patch=32, per_image=20, kernel_size=9)
    make_dataset(paths, tmp_path / "local.h5", with_sources(config, paths), 5)
    output = tmp_path / "pairs.h5"
    shards_in_process(paths, output, with_sources(config, paths))
    assert_same_file(tmp_path / "local.h5", output, virtual=True)
    consolidate(output)
    assert_same_file(tmp_path / "local.h5", output, virtual=False)
    with h5py.File(output, "r") as f:
        assert list(f["method"][:]) == [4] * 40 + [0] * 20


def test_missing_or_damaged_shards_are_named(local_file, tmp_path):
    paths, _ = local_file
    output = tmp_path / "pairs.h5"
    shards_in_process(paths, output)
    folder = shard_folder(output)
    # Truncated: still an HDF5 signature, but its rows are gone.
    data = (folder / shard_name(1)).read_bytes()
    (folder / shard_name(1)).write_bytes(data[: len(data) // 2])
    info, problems = verify_pairs(output)
    assert len(problems) == 1 and shard_name(1) in problems[0] and "damaged" in problems[0]
    (folder / shard_name(2)).unlink()
    with pytest.raises(ValueError, match=f"{shard_name(2)}' \\(missing\\)"):
        open_pairs(output)
    with pytest.raises(ValueError, match="missing or damaged"):
        PairsDataset([output])
    result = CliRunner().invoke(cli, ["inspect", str(output)])
    assert result.exit_code == 1 and shard_name(2) in result.output


def test_read_shard_accepts_only_its_own_job(local_file, tmp_path):
    paths, _ = local_file
    shard = plan_shards(paths, CONFIG.per_image, SHARD)[0]
    path = tmp_path / shard_name(0)
    summary = write_shard(str(path), shard, CONFIG, 5)
    config_json = json.dumps(CONFIG.to_dict(), sort_keys=True)
    segments = [[j, first, stop] for j, _, first, stop in shard]
    assert read_shard(path, segments, config_json, 5) == summary
    assert summary["pairs"] == 32 and summary["fingerprints"][0][0] == 0
    with pytest.raises(ValueError, match="another job"):
        read_shard(path, segments, config_json, 6)
    with pytest.raises(ValueError, match="another job"):
        read_shard(path, segments[:1], config_json, 5)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ValueError, match="damaged"):
        read_shard(path, segments, config_json, 5)


def test_plan_shards_cuts_the_samples_in_order():
    paths = [f"p{i}" for i in range(5)]
    shards = plan_shards(paths, 20, 30)
    assert [sum(stop - first for _, _, first, stop in s) for s in shards] == [30, 30, 30, 10]
    assert shards[0] == [(0, "p0", 0, 20), (1, "p1", 0, 10)]
    assert shards[1][0] == (1, "p1", 10, 20) and shards[-1] == [(4, "p4", 10, 20)]


def test_without_ray_or_cluster_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ClusterError, match=r'pip install "ray>=2.10"'):
        cluster.connect("auto")
    monkeypatch.delitem(sys.modules, "ray")
    began = time.perf_counter()
    with pytest.raises(ClusterError, match="cannot reach a Ray cluster at 127.0.0.1:9"):
        cluster._check_reachable("127.0.0.1:9")
    assert time.perf_counter() - began < 30
    with pytest.raises(ClusterError, match="expects auto, local or HOST:PORT"):
        cluster._check_reachable("nowhere")


def test_cli_without_ray(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)
    result = CliRunner().invoke(cli, ["make-dataset", "-o", str(tmp_path / "p.h5"), "--ray",
                                      "auto"])  # fmt: skip
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        'Error: --ray needs Ray: pip install "ray>=2.10"'
    )
    result = CliRunner().invoke(cli, ["make-dataset", "-o", str(tmp_path / "p.h5"),
                                      "--consolidate"])  # fmt: skip
    assert result.exit_code == 2 and "only applies to --ray" in result.output


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_dataset_process(output, ray, env):
    """``blurgen make-dataset`` of one pair with ``--ray RAY``, in a process of its own with
    ``env`` (Ray keeps its authentication settings for the life of a process)."""
    photo = str(bundled_images()[0])
    command = [sys.executable, "-m", "blurgen.cli", "make-dataset", photo, "-o", str(output),
               "--per-image", "1", "--patch", "64", "--kernel-size", "9", "--workers", "1",
               "--ray", ray, "-q"]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="class")
def ray_head():
    """A Ray head of 1 CPU that `ray start --head` runs on this machine, asking for an auth
    token; yields ``(address, token, env)``, ``env`` this process's environment without Ray's
    address and authentication settings. It has a temporary folder of its own (short: Ray's
    socket paths must fit 107 bytes), so --ray auto does not find it, and its processes are
    one process group, ended with it."""
    pytest.importorskip("ray")
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN",
                        "RAY_AUTH_TOKEN_PATH")}  # fmt: skip
    token, port = secrets.token_hex(32), free_port()
    folder = Path(tempfile.mkdtemp(prefix="rayhead"))
    command = [str(Path(sys.executable).with_name("ray")), "start", "--head",
               f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
               "--disable-usage-stats", f"--temp-dir={folder}", "--block"]  # fmt: skip
    with open(folder / "start.log", "w+") as log:
        head = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token},
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while "Ray runtime started" not in (folder / "start.log").read_text():
                assert head.poll() is None, (folder / "start.log").read_text()
                assert time.monotonic() < deadline, "the Ray head did not start in 120 s"
                time.sleep(0.2)
            yield f"127.0.0.1:{port}", token, env
        finally:
            # `ray start` stops its processes on SIGTERM (in 2 s here); signalled too, they
            # would leave it waiting 30 s for them.
            head.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                head.wait(timeout=60)
            with contextlib.suppress(ProcessLookupError):  # what outlived `ray start`
                os.killpg(head.pid, signal.SIGKILL)
            head.wait()
            shutil.rmtree(folder, ignore_errors=True)


class TestBesideARayHead:
    """A Ray head that `ray start --head` runs on this machine, asking for an auth token."""

    def test_a_head_that_asks_for_its_token_is_one_clear_line_at_once(self, ray_head, tmp_path):
        address, token, env = ray_head
        began = time.monotonic()
        result = make_dataset_process(tmp_path / "a.h5", address, env)
        assert result.returncode == 1
        # Ray's own line about the refused call comes first; ray.init would print 20 of them
        # over 20 s.
        assert time.monotonic() - began < 15
        assert result.stderr.strip().splitlines()[-1] == (
            f"Error: the Ray cluster at {address} asks for its auth token: run again with "
            "RAY_AUTH_MODE=token and the cluster's token ('ray get-auth-token' on its head "
            "prints it) in ~/.ray/auth_token or RAY_AUTH_TOKEN"
        )
        assert not (tmp_path / "a.h5").exists()
        wrong = {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        result = make_dataset_process(tmp_path / "a.h5", address, wrong)
        assert result.returncode == 1
        assert f"the Ray cluster at {address} does not take this machine's auth token" in (
            result.stderr.strip().splitlines()[-1])  # fmt: skip
        # What the first message says to do works.
        right = {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
        result = make_dataset_process(tmp_path / "a.h5", address, right)
        assert result.returncode == 0, result.stderr
        with open_pairs(tmp_path / "a.h5") as f:
            assert len(f["sharp"]) == 1

    def test_local_starts_an_instance_of_its_own(self, ray_head, tmp_path):
        # Without an address ray.init joins the head (RAY_ADDRESS, or the one `ray start`
        # recorded), which refuses a number of CPUs.
        address, _, env = ray_head
        local = {**env, "RAY_ADDRESS": address, "RAY_AUTH_MODE": "disabled"}
        result = make_dataset_process(tmp_path / "b.h5", "local", local)
        assert result.returncode == 0, result.stderr
        with open_pairs(tmp_path / "b.h5") as f:
            assert len(f["sharp"]) == 1


# With Ray: a real local instance of 2 CPUs, shared by the tests below.


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def test_ray_run_equals_the_local_run_and_resumes(ray_instance, local_file, tmp_path):
    paths, local = local_file
    output = tmp_path / "pairs.h5"
    summary = cluster.make_dataset_ray(paths, output, CONFIG, 5, shard_pairs=SHARD)
    assert summary["pairs"] == 80 and summary["shards"] == 4 and summary["reused"] == 0
    assert len(summary["skipped"]) == 2
    assert_same_file(local, output, virtual=True)
    with pytest.raises(FileExistsError):
        cluster.make_dataset_ray(paths, output, CONFIG, 5, shard_pairs=SHARD)
    # Interrupted: one shard lost, one damaged, the output not written yet.
    folder = shard_folder(output)
    kept = (folder / shard_name(0)).stat().st_mtime_ns
    (folder / shard_name(1)).write_bytes(b"half a shard")
    (folder / shard_name(2)).unlink()
    output.unlink()
    kept_pairs = 0
    for number in (0, 3):
        with h5py.File(folder / shard_name(number), "r") as f:
            kept_pairs += len(f["sharp"])
    summary = cluster.make_dataset_ray(paths, output, CONFIG, 5, shard_pairs=SHARD)
    assert summary["reused"] == 2 and (folder / shard_name(0)).stat().st_mtime_ns == kept
    assert summary["kept"] == kept_pairs and 0 < kept_pairs < 80
    assert_same_file(local, output, virtual=True)
    # Another seed does not take this job's shards.
    summary = cluster.make_dataset_ray(paths, output, CONFIG, 6, shard_pairs=SHARD,
                                       overwrite=True)  # fmt: skip
    assert summary["reused"] == 0


def test_ray_makes_rolling_shutter_pairs_as_the_local_run(ray_instance, tmp_path):
    config = DatasetConfig(patch=32, per_image=6, kernel_size=9, blur="camera",
                           camera=CameraModel(readout=(0.5, 1.0)))  # fmt: skip
    paths = [str(p) for p in bundled_images()[:2]]
    make_dataset(paths, tmp_path / "local.h5", config, 5, workers=2)
    output = tmp_path / "pairs.h5"
    cluster.make_dataset_ray(paths, output, config, 5, shard_pairs=4)
    assert_same_file(tmp_path / "local.h5", output, virtual=True)


def test_a_strict_stop_leaves_no_shards(ray_instance, local_file, tmp_path):
    paths, _ = local_file
    output = tmp_path / "pairs.h5"
    with pytest.raises(ValueError, match=r"tiny.png.*\(stopped: --strict\)"):
        cluster.make_dataset_ray(paths, output, CONFIG, 5, shard_pairs=SHARD, strict=True)
    assert not output.exists() and not shard_folder(output).exists()
    # Where an earlier run finished the shards, they stay, but for those that skipped a
    # source: they would stop the next run on the same source, mended or not.
    cluster.make_dataset_ray(paths, output, CONFIG, 5, shard_pairs=SHARD)
    output.unlink()
    folder = shard_folder(output)
    skipping = set()
    for shard in folder.iterdir():
        with h5py.File(shard, "r") as f:
            if json.loads(f.attrs["skipped"]):
                skipping.add(shard.name)
    before = {shard.name for shard in folder.iterdir()}
    assert skipping and skipping != before
    with pytest.raises(ValueError, match="stopped: --strict"):
        cluster.make_dataset_ray(paths, output, CONFIG, 5, shard_pairs=SHARD, strict=True)
    assert {shard.name for shard in folder.iterdir()} == before - skipping


def test_ray_consolidated_through_the_cli(ray_instance, local_file, tmp_path):
    paths, local = local_file
    output = tmp_path / "pairs.h5"
    args = ["make-dataset", *paths, "-o", str(output), "--patch", "32", "--per-image", "20",
            "--kernel-size", "9", "--seed", "5", "--preset", "none", "--ray", "auto",
            "--shard-pairs", "32", "--consolidate"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert not shard_folder(output).exists()
    with h5py.File(output, "r") as f:
        assert not f["sharp"].is_virtual and len(f["sharp"]) == 80
        config = json.loads(f.attrs["config"])
    assert config["patch"] == 32 and config["per_image"] == 20


def _kill_first_shard_task(killed: list) -> None:
    """SIGKILL the first Ray worker seen running a shard (its process title names the task)."""
    while not killed:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    title = f.read()
            except OSError:
                continue
            if title.startswith(b"ray::write_shard"):
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                return
        time.sleep(0.002)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker in /proc")
def test_a_killed_worker_is_retried_and_changes_nothing(ray_instance, tmp_path):
    config = DatasetConfig(patch=96, per_image=32, kernel_size=15)
    paths = [str(p) for p in bundled_images()]
    make_dataset(paths, tmp_path / "local.h5", config, 2)
    killed: list[int] = []
    threading.Thread(target=_kill_first_shard_task, args=(killed,), daemon=True).start()
    cluster.make_dataset_ray(paths, tmp_path / "ray.h5", config, 2, shard_pairs=32)
    killed.append(0)  # stops the thread if it found nothing
    assert killed[0] > 0, "no shard task was seen running, so none was killed"
    assert_same_file(tmp_path / "local.h5", tmp_path / "ray.h5", virtual=True)
