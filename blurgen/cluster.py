"""make-dataset past one machine: Ray tasks that each write a shard, joined by a virtual dataset.

The samples, in the local run's order, are cut into shards of consecutive samples. Each shard
is one Ray task: it synthesises its samples exactly as a local worker does, in jobs
(:func:`~blurgen.pipeline.synthesise`), and writes ``<output>.d/shard-NNNNN.h5``, first as
``.partial``, renamed when complete, on storage every node sees. The driver then writes
``<output>`` as a pairs file (schema ``blurgen-pairs/4``) whose per-sample datasets are HDF5
virtual datasets over the shards in order: the same rows, pair for pair, as the local run's
file, and read by h5py, and so by every blurgen command and :class:`~blurgen.torch.
PairsDataset`, as one file. The shard folder is named relative to the output, so the two move
together; :func:`consolidate` copies the samples into the file itself.

Ray retries a task whose worker dies (the retry rewrites the shard from the start); running the
same job again keeps every finished shard of it and writes the rest; a damaged shard is named
and written again. Ray is imported only here, and only when a job runs (``pip install
"ray>=2.10"``, or blurgen's ``ray`` extra).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py

from .h5 import (
    SHARD_SCHEMA,
    append_samples,
    create_samples,
    open_pairs,
    read_shard,
    sample_layouts,
    write_header,
)
from .io import check_output_path, partial_path
from .pipeline import (
    DatasetConfig,
    Segment,
    check_learned,
    plan_jobs,
    samples_per_job,
    split_segments,
    synthesise,
    with_sources,
)
from .sample import LearnedBlur

log = logging.getLogger("blurgen")

# Pairs per shard: about 400 MB of 256 px pairs, a task of tens of seconds on one core.
SHARD_PAIRS = 1024
# Rows copied at a time by consolidate: 256 px pairs, about 50 MB per column.
COPY_ROWS = 256
# Seconds a --strict stop waits for its cancelled tasks to end before it removes their shards.
STOP_WAIT_S = 30.0


class _StrictStop(ValueError):
    """A source was skipped under ``strict``: the job stops, and leaves no shards."""


class ClusterError(RuntimeError):
    """Ray is missing, the cluster cannot be reached, or a task failed past its retries."""


def shard_folder(output: str | os.PathLike) -> Path:
    """Where the shards of ``output`` are written: ``<output>.d`` beside it."""
    output = Path(output)
    return output.with_name(output.name + ".d")


def shard_name(number: int) -> str:
    """The file name of shard ``number``."""
    return f"shard-{number:05d}.h5"


def plan_shards(paths: Sequence[str], per_image: int, shard_pairs: int) -> list[list[Segment]]:
    """The samples in dataset order, cut into shards of ``shard_pairs`` (the last may be
    smaller), each a list of ``(j, path, first, stop)`` segments."""
    return plan_jobs(paths, per_image, shard_pairs)


def _segments(shard: list[Segment]) -> list[list[int]]:
    """A shard's samples as ``[source, first, stop]`` lists, as its file records them."""
    return [[j, first, stop] for j, _, first, stop in shard]


def write_shard(
    path: str,
    shard: list[Segment],
    config: DatasetConfig,
    seed: int,
    device: str = "cpu",
    learned: LearnedBlur | None = None,
) -> dict:
    """Synthesise one shard's samples and write them to ``path`` (as ``.partial``, renamed
    when complete). Runs as a Ray task, or in-process.

    Returns:
        The shard's summary, as :func:`blurgen.h5.read_shard` reads it back: ``pairs``,
        ``fingerprints`` (``[source, fingerprint]`` pairs) and ``skipped`` (``{"path",
        "reason"}`` once per skipped source).

    Raises:
        OSError: the shard cannot be written (the message names it); nothing is left behind.
    """
    temporary = partial_path(path)
    config_json = json.dumps(config.to_dict(), sort_keys=True)
    pairs, fingerprints, skipped = 0, {}, []
    try:
        with h5py.File(temporary, "w") as f:
            create_samples(f, config)
            samples = sum(stop - first for _, _, first, stop in shard)
            for job in split_segments(shard, samples_per_job(config, samples, 1)):
                for result in synthesise(job, config, seed, device, learned):
                    if result.skipped:
                        if result.first == 0:  # once per source, as the local writer does
                            path_of = next(p for j, p, _, _ in job if j == result.source)
                            skipped.append({"path": path_of, "reason": result.skipped})
                        continue
                    fingerprints[result.source] = result.fingerprint
                    pairs = append_samples(f, result.arrays, pairs)
            f.attrs.update(
                schema=SHARD_SCHEMA,
                config=config_json,
                root_seed=seed,
                segments=json.dumps(_segments(shard)),
                pairs=pairs,
                fingerprints=json.dumps(list(fingerprints.items())),
                skipped=json.dumps(skipped),
                complete=True,
            )
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise OSError(f"cannot write shard '{path}' ({exc})") from exc
    os.replace(temporary, path)
    return {"pairs": pairs, "fingerprints": [list(item) for item in fingerprints.items()],
            "skipped": skipped}  # fmt: skip


def join_shards(
    output: str | os.PathLike,
    paths: Sequence[str],
    config: DatasetConfig,
    seed: int,
    summaries: list[dict],
) -> int:
    """Write ``output`` as a pairs file whose samples are virtual datasets over the shards in
    :func:`shard_folder` (their summaries in shard order); returns the number of pairs.

    Raises:
        ValueError: the shards hold no pairs at all.
    """
    output = Path(output)
    folder = shard_folder(output)
    total = sum(summary["pairs"] for summary in summaries)
    skipped = [entry for summary in summaries for entry in summary["skipped"]]
    if not total:
        first = skipped[0]["reason"] if skipped else "no samples"
        raise ValueError(
            f"no pairs written: all {len(paths)} sources were skipped (first: {first})"
        )
    fingerprints = [""] * len(paths)
    for summary in summaries:
        for source, fingerprint in summary["fingerprints"]:
            fingerprints[source] = fingerprint
    temporary = partial_path(output)
    with h5py.File(temporary, "w") as f:
        write_header(f, list(paths), fingerprints, json.dumps(config.to_dict(), sort_keys=True),
                     seed)  # fmt: skip
        for name, column in sample_layouts(config).items():
            tail = column.shape
            layout = h5py.VirtualLayout((total, *tail), column.dtype)
            row = 0
            for number, summary in enumerate(summaries):
                count = summary["pairs"]
                if count:
                    shard = f"{folder.name}/{shard_name(number)}"
                    layout[row : row + count] = h5py.VirtualSource(shard, name, (count, *tail))
                    row += count
            f.create_virtual_dataset(name, layout)
        f.attrs["skipped"] = json.dumps(skipped)
        f.attrs["shards"] = folder.name
        f.attrs["complete"] = True
    os.replace(temporary, output)
    return total


def consolidate(path: str | os.PathLike) -> None:
    """Copy the samples of a pairs file made on a cluster into the file itself, making it an
    ordinary file (the same bytes a local run writes), then remove its shards.

    Written as ``<path>.partial`` and renamed: interrupted, the sharded file is left as it was.

    Raises:
        ValueError: not a pairs file, already an ordinary one, or a shard is missing or damaged.
    """
    path = Path(path)
    temporary = partial_path(path)
    with open_pairs(path) as source:
        if not source["sharp"].is_virtual:
            raise ValueError(f"'{path}' is already one ordinary file")
        folder = path.parent / source.attrs["shards"]
        config = DatasetConfig.from_dict(json.loads(source.attrs["config"]))
        total = len(source["sharp"])
        try:
            with h5py.File(temporary, "w") as f:
                write_header(f, list(source["sources"].asstr()[...]),
                             list(source["fingerprints"].asstr()[...]),
                             source.attrs["config"], int(source.attrs["root_seed"]))  # fmt: skip
                create_samples(f, config, total)
                for name in sample_layouts(config):
                    for start in range(0, total, COPY_ROWS):
                        rows = slice(start, min(total, start + COPY_ROWS))
                        f[name][rows] = source[name][rows]
                f.attrs["skipped"] = source.attrs["skipped"]
                f.attrs["complete"] = True
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    os.replace(temporary, path)
    shutil.rmtree(folder)


def connect(address: str, cpus: int | None = None) -> tuple[Any, bool]:
    """Ray, connected to the cluster at ``address``: ``"auto"`` (the one started on this
    machine by ``ray start``), ``"local"`` (a new instance on this machine with ``cpus`` CPUs,
    even where ``ray start`` runs one) or ``HOST:PORT`` / ``ray://HOST:PORT``. Returns ``(ray,
    started)``, ``started`` when this call started or joined it (and the caller should shut it
    down).

    Raises:
        ClusterError: Ray is not installed, no cluster answers at ``address``, or it turns
            this process away for want of its auth token.
    """
    try:
        import ray
    except ImportError:
        raise ClusterError('--ray needs Ray: pip install "ray>=2.10"') from None
    if ray.is_initialized():
        return ray, False
    quiet = {"logging_level": logging.WARNING, "log_to_driver": True}
    if address == "local":
        # Without address="local", ray.init joins a cluster that `ray start` runs here, and
        # that refuses num_cpus.
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, **quiet)
        return ray, True
    # Absent from Rays without token authentication.
    refused = getattr(ray.exceptions, "AuthenticationError", ())
    if address != "auto":
        _check_reachable(address)
        if refused and not address.startswith("ray://"):
            _check_admitted(ray, address)
    try:
        ray.init(address=address, **quiet)
    except refused:
        raise _token_error(address) from None
    except ConnectionError as exc:
        if address == "auto":
            raise ClusterError(
                "no Ray cluster is running on this machine (--ray auto): start one with "
                "'ray start --head', give its address, or use --ray local"
            ) from None
        raise ClusterError(f"cannot join the Ray cluster at {address} ({exc})") from None
    return ray, True


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on an address where nothing listens (ray.init would retry for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(
            f"--ray expects auto, local or HOST:PORT (e.g. 10.0.0.1:6379), got {address!r}"
        )
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ClusterError(f"cannot reach a Ray cluster at {address}: {reason}") from None


def _check_admitted(ray: Any, address: str) -> None:
    """Fail fast where the cluster at ``address`` turns this process away for want of its auth
    token, or no Ray cluster answers there: ray.init would try 20 times, a line each, over
    20 s (a refused token) to minutes (another service on the port)."""
    from ray._raylet import GcsClient

    try:
        GcsClient(address=address)
    except ray.exceptions.AuthenticationError:
        raise _token_error(address) from None
    except ray.exceptions.RayError as exc:
        reason = str(exc).splitlines()[0]
        raise ClusterError(f"cannot join the Ray cluster at {address} ({reason})") from None


def _token_error(address: str) -> ClusterError:
    """What to do when a cluster asks for its auth token. Ray sends the token to a cluster it
    is given the address of only with RAY_AUTH_MODE=token, and so does blurgen: the token
    admits to every cluster that shares it, so sending it is the user's call."""
    where = "on this machine" if address == "auto" else f"at {address}"
    token = (
        "the cluster's token ('ray get-auth-token' on its head prints it) in ~/.ray/auth_token "
        "or RAY_AUTH_TOKEN"
    )
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        return ClusterError(
            f"the Ray cluster {where} does not take this machine's auth token (or there is "
            f"none): put {token}"
        )
    return ClusterError(
        f"the Ray cluster {where} asks for its auth token: run again with RAY_AUTH_MODE=token "
        f"and {token}"
    )


def make_dataset_ray(
    sources: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    config: DatasetConfig,
    seed: int = 0,
    *,
    address: str = "auto",
    cpus: int | None = None,
    shard_pairs: int = SHARD_PAIRS,
    device: str = "cpu",
    learned: LearnedBlur | None = None,
    overwrite: bool = False,
    strict: bool = False,
    consolidated: bool = False,
    retries: int = 3,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """:func:`blurgen.pipeline.make_dataset` as Ray tasks, one shard each; the same pairs.

    Args:
        sources, output, config, seed, device, learned, overwrite, strict, progress: as for
            :func:`~blurgen.pipeline.make_dataset` (``overwrite`` also discards finished
            shards; ``strict`` stops at the first shard that skipped a source, and removes
            the shards).
        address: the cluster (see :func:`connect`); ignored when Ray is already initialised.
        cpus: CPUs of a ``"local"`` instance.
        shard_pairs: pairs per shard.
        consolidated: copy the samples into ``output`` and remove the shards (see
            :func:`consolidate`).
        retries: times Ray runs a task again when its worker dies or it cannot write.

    Returns:
        Summary: ``path``, ``pairs``, ``skipped``, ``sources``, ``shards``, ``reused`` (the
        finished shards an earlier run left) and ``kept`` (their pairs).

    Raises:
        ClusterError: Ray is missing or unreachable, or a task failed past its retries.
        FileExistsError: ``output`` exists and not ``overwrite``.
        ValueError: as for a local run; OSError: a shard or the output cannot be written.
    """
    paths = [str(p) for p in sources]
    config = with_sources(config, paths)
    output = check_output_path(output)
    if output.exists() and not overwrite:
        raise FileExistsError(f"'{output}' already exists; pass --overwrite to replace it")
    check_learned(config, learned)
    ray, started = connect(address, cpus)
    try:
        summary = _run(ray, paths, output, config, seed, shard_pairs, device, learned,
                       overwrite, strict, retries, progress)  # fmt: skip
    finally:
        if started:
            ray.shutdown()
    if consolidated:
        consolidate(output)
    return summary


def _run(
    ray: Any, paths: list[str], output: Path, config: DatasetConfig, seed: int,
    shard_pairs: int, device: str, learned: LearnedBlur | None, overwrite: bool, strict: bool,
    retries: int, progress: Callable[[int], None] | None,
) -> dict:  # fmt: skip
    folder = shard_folder(output)
    if overwrite and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(exist_ok=True)
    shards = plan_shards(paths, config.per_image, shard_pairs)
    config_json = json.dumps(config.to_dict(), sort_keys=True)
    summaries: list[dict | None] = []
    for number, shard in enumerate(shards):
        summaries.append(None)
        path = folder / shard_name(number)
        if path.exists():
            try:
                summaries[number] = read_shard(path, _segments(shard), config_json, seed)
            except ValueError as exc:
                log.warning("'%s': %s; writing it again", path, exc)
    kept = {number for number, summary in enumerate(summaries) if summary is not None}

    def finished(number: int) -> None:
        summary = summaries[number]
        if strict and summary["skipped"]:
            raise _StrictStop(f"{summary['skipped'][0]['reason']} (stopped: --strict)")
        if progress is not None:
            done = sum(stop == config.per_image for _, _, _, stop in shards[number])
            if done:
                progress(done)

    # A task is retried when its worker dies, and when it fails to write (shared storage can
    # fail for a moment); a bad image is not an error, and nothing else would pass on retry.
    task = ray.remote(write_shard).options(
        max_retries=retries, retry_exceptions=[OSError], num_cpus=1,
        num_gpus=1 if device == "cuda" else 0,
    )  # fmt: skip
    running: dict = {}
    try:
        for number, summary in enumerate(summaries):
            if summary is not None:
                finished(number)
        shared = ray.put(config), ray.put(learned)
        running = {
            task.remote(str(folder / shard_name(number)), shards[number], shared[0], seed,
                        device, shared[1]): number
            for number, summary in enumerate(summaries)
            if summary is None
        }  # fmt: skip
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            number = running.pop(ready[0])
            summaries[number] = _result(ray, ready[0], folder / shard_name(number), retries)
            finished(number)
    except BaseException as exc:
        for ref in running:
            ray.cancel(ref, force=True)
        if isinstance(exc, KeyboardInterrupt):
            done = sum(summary is not None for summary in summaries)
            raise KeyboardInterrupt(
                f"{done} of {len(shards)} shards are in '{folder}'; run the same command "
                "again to resume"
            ) from None
        if isinstance(exc, _StrictStop):
            # As a local run's partial file: the shards this run began go, an interrupted
            # run's stay, but for one that skipped a source (it would stop the next run on the
            # same source, mended or not).
            if running:
                ray.wait(list(running), num_returns=len(running), timeout=STOP_WAIT_S)
            for number, summary in enumerate(summaries):
                if number not in kept or summary["skipped"]:
                    shard = folder / shard_name(number)
                    for path in (shard, partial_path(shard)):  # a cancelled task's too
                        path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                folder.rmdir()  # where it is empty
        raise
    try:
        pairs = join_shards(output, paths, config, seed, summaries)
    except ValueError:
        shutil.rmtree(folder)  # every source was skipped: nothing to keep, as a local run
        raise
    skipped = [entry for summary in summaries for entry in summary["skipped"]]
    return {"path": str(output), "pairs": pairs, "skipped": skipped, "sources": len(paths),
            "shards": len(shards), "reused": len(kept),
            "kept": sum(summaries[number]["pairs"] for number in kept)}  # fmt: skip


def _result(ray: Any, ref: Any, path: Path, retries: int) -> dict:
    """A finished task's summary; its error as the original exception where it is one a user
    can act on (a bad image, a full disk), else a ClusterError naming the shard."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, (ValueError, OSError)):
            raise cause from None
        raise ClusterError(f"shard '{path}' failed: {cause or exc}") from None
    except ray.exceptions.RayError as exc:
        raise ClusterError(
            f"shard '{path}' failed after {retries} retries: {str(exc).splitlines()[0]}"
        ) from None
