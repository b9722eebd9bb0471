"""A study's runs as cluster jobs: each cell x seed one SLURM job, submitted as job arrays through ``submitit``
(the launcher of the MAE, DINO and ConvNeXt code bases), waited for, then collected like local runs.

A job runs the very commands a local study runs (:func:`dsbias.studies.runner.commands`), so a run dir made on
the cluster is an ordinary run dir. A job that fails or is killed leaves its run incomplete; the study waits for
all the others, names the failed ones and their logs, and a rerun of the same command submits only the runs
that are still incomplete. A job that is still queued or running when the study is rerun (the submitting process
was stopped) is waited for, not submitted twice: the job ids are kept in ``DIR/jobs.json``.

Multi-node runs: with ``nodes > 1`` and a run launcher of ``accelerate launch``, each node's task runs the
training command with ``--num_machines``, ``--machine_rank`` and the first node as the main process (from
submitit's job environment); the probes then run on the first node only.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from dsbias.errors import UserError
from dsbias.runs import read_json, write_json

log = logging.getLogger(__name__)
LAUNCHER = "submitit"  # the --launcher value that selects this module
POLL_S = 5.0  # seconds between checks of the jobs' states (each check of SLURM jobs runs sacct)
PORT = 29500  # accelerate's default main-process port
ACTIVE_STATES = ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED")


def parse_options(options: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings (values read as YAML: ``nodes=2`` is an int) into submitit parameters.

    ``cluster`` (``slurm``, ``local``, ``debug``; default: SLURM when ``sbatch`` exists, else local) selects the
    executor; every other key goes to ``AutoExecutor.update_parameters`` (``timeout_min``, ``nodes``,
    ``gpus_per_node``, ``cpus_per_task``, ``mem_gb``, ``slurm_partition``, ``slurm_array_parallelism``, ...).
    """
    out: dict[str, Any] = {}
    for opt in options:
        key, sep, value = opt.partition("=")
        if not sep or not key:
            raise UserError(f"--slurm {opt!r}: expected KEY=VALUE, e.g. timeout_min=600 or slurm_partition=gpu")
        out[key.strip()] = yaml.safe_load(value)
    return out


def executor(folder: Path, options: dict[str, Any]) -> Any:
    """A submitit ``AutoExecutor`` logging under ``folder``, configured with ``options`` (:func:`parse_options`)."""
    try:
        import submitit
    except ImportError:
        raise UserError("--launcher submitit needs submitit: pip install -e '.[cluster]'") from None
    opts = dict(options)
    ex = submitit.AutoExecutor(folder=folder / "%j", cluster=opts.pop("cluster", None))
    opts.setdefault("tasks_per_node", 1)  # one task per node: accelerate launch starts the per-GPU processes
    try:
        ex.update_parameters(**opts)
    except (ValueError, TypeError, NameError) as e:  # submitit names an unknown option with a NameError
        raise UserError(f"--slurm: {str(e).splitlines()[0]}") from None
    return ex


def node_commands(cmds: list[list[str]], env: Any) -> list[list[str]]:
    """The commands one node of a job runs: all of them on one node; on several, the training command with
    accelerate's multi-machine flags on every node, the probes on the first node only."""
    if env.num_nodes <= 1:
        return cmds
    train, probes = cmds[0], cmds[1:]
    if train[:2] != ["accelerate", "launch"]:
        raise UserError(f"nodes={env.num_nodes}: multi-node runs need --run-launcher 'accelerate launch ...'")
    main_host = env.hostnames[0]
    train = [*train[:2], "--num_machines", str(env.num_nodes), "--machine_rank", str(env.node),
             "--main_process_ip", main_host, "--main_process_port", str(PORT), *train[2:]]
    return [train, *(probes if env.node == 0 else [])]


def run_job(cmds: list[list[str]], log_path: str, cwd: str) -> None:
    """What a job executes: the run's commands in order, output appended to its study log.

    Raises:
        RuntimeError: A command failed (the job is then reported failed and its run stays incomplete).
    """
    try:
        import submitit

        cmds = node_commands(cmds, submitit.JobEnvironment())
    except RuntimeError:  # not inside a submitit job (a direct call): run as one node
        pass
    with open(log_path, "a") as logf:
        for cmd in cmds:
            logf.write("$ " + shlex.join(cmd) + "\n")
            logf.flush()
            code = subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=cwd).returncode
            if code != 0:
                raise RuntimeError(f"`{shlex.join(cmd[:4])} ...` failed (exit {code}); see {log_path}")


def _reason(e: Exception) -> str:
    """One line on why a job failed, from submitit's multi-line error (a traceback or a log tail)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    died = next((line for line in lines if "has not produced any output" in line), None)
    if died:  # the job's process ended without a result: killed (OOM, timeout, node failure, scancel)
        return "ended without a result, " + died.split("has not produced any output ", 1)[1]
    errors = [line for line in lines if "Error:" in line]
    return (errors[-1] if errors else lines[0] if lines else type(e).__name__)[:300]


def _jobs_file(out: Path) -> Path:
    return out / "jobs.json"


def _still_active(ex: Any, folder: Path, record: dict[str, Any]) -> Any | None:
    """The recorded job of a run if it is still queued or running on SLURM (a rerun waits for it), else None."""
    if type(ex).__name__ != "AutoExecutor" or ex.cluster != "slurm":
        return None  # local jobs die with the process that started them: nothing to wait for
    import submitit

    job = submitit.SlurmJob(folder=folder / "%j", job_id=record["job_id"])
    return job if job.state.upper() in ACTIVE_STATES else None


def run_jobs(
    todo: list[tuple[str, list[list[str]], Path]], out: Path, options: dict[str, Any], cwd: Path,
    echo: Callable[[str], None] = print,
) -> list[str]:
    """Submit every run as a job (one job array), wait for all to end, return the names of those that failed.

    Args:
        todo: ``(run name, commands, study log path)`` of each incomplete run.
        out: Study directory (``out/slurm/<job id>/`` holds submitit's logs; ``out/jobs.json`` the job ids).
        options: Executor options (:func:`parse_options`).
        cwd: Where the commands run (the repository root).
        echo: Live progress lines.
    """
    ex = executor(out / "slurm", options)
    ex.update_parameters(name=f"dsbias-{out.name}")
    records = read_json(_jobs_file(out)) if _jobs_file(out).is_file() else {}
    jobs: dict[str, Any] = {}
    for name, _, _ in todo:
        if name in records and (job := _still_active(ex, out / "slurm", records[name])) is not None:
            echo(f"  {name}: job {job.job_id} still {job.state.lower()}: waiting for it")
            jobs[name] = job
    submit = [t for t in todo if t[0] not in jobs]
    if submit:
        with ex.batch():  # one SLURM job array; the local executor starts them one process each
            pending = [(name, ex.submit(run_job, cmds, str(logp), str(cwd))) for name, cmds, logp in submit]
        for name, job in pending:
            jobs[name] = job
            records[name] = {"job_id": str(job.job_id), "submitted": time.strftime("%Y-%m-%dT%H:%M:%S")}
        write_json(_jobs_file(out), records)
        echo(f"  submitted {len(submit)} job(s) ({ex.cluster}): {', '.join(str(j.job_id) for _, j in pending)}")
    failed, waiting = [], dict(jobs)
    while waiting:
        for name, job in list(waiting.items()):
            if not job.done():
                continue
            del waiting[name]
            try:
                job.result()
                echo(f"  {name}: job {job.job_id} done ({len(jobs) - len(waiting)}/{len(jobs)})")
            except Exception as e:  # noqa: BLE001 - any failure of one job is reported; the others go on
                failed.append(name)
                echo(f"  {name}: job {job.job_id} FAILED: {_reason(e)} (logs: {out / 'slurm' / str(job.job_id)})")
        if waiting:
            time.sleep(POLL_S)
    return failed

