"""A spec file as a tvbench method: write the case's files, run the command (or ask the worker), read the image.

A case fails, and the run goes on, when the command exits non-zero, runs past ``timeout_s`` (its whole process
group is killed), or leaves no readable image at ``output``; the failure message (one line, in the manifest)
carries the tail of the command's stderr and the kept work folder. The method's config hash covers the spec's
content and the git commit of ``cwd`` (``+dirty`` for uncommitted changes), so a changed spec or a changed
checkout is a different run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

from PIL import Image

from tvbench.cases import Case
from tvbench.errors import TvbenchError
from tvbench.methods.base import EditResult, Method, runtime_option
from tvbench.provenance import repo_commit
from tvbench.settings import cache_dir
from tvbench_adapters.external.placeholders import fill, names_in
from tvbench_adapters.external.process import file_tail, run_command
from tvbench_adapters.external.spec import MethodSpec
from tvbench_adapters.external.worker import Worker, WorkerError

MAX_START_FAILURES = 3
"""A worker that fails to start this many times in a row is not started again in the same run."""


class ExternalFailure(TvbenchError):
    """One case failed in the external command (its exit, its output, its time); the message is one line."""


@dataclass(frozen=True)
class Resolved:
    """What a spec means on this machine: ``${VARS}`` expanded, cwd and executable checked, the code's commit."""

    cwd: Path
    command: tuple[str, ...]
    env: dict[str, str]
    output: str
    work_root: Path
    commit: str | None


def resolve(spec: MethodSpec) -> Resolved:
    """Raises :class:`~tvbench_adapters.external.spec.SpecError` when the spec cannot run here."""
    cwd = spec.resolved_cwd()
    command = tuple(spec.expand(f"command[{k}]", item) for k, item in enumerate(spec.command))
    env = {key: spec.expand(f"env.{key}", value) for key, value in spec.env.items()}
    _check_executable(spec, command[0], cwd, env)
    if spec.work_root:
        work_root = Path(spec.expand("work_root", spec.work_root)).expanduser()
        work_root = work_root if work_root.is_absolute() else spec.spec_dir / work_root
    else:
        work_root = cache_dir() / "external" / spec.name
    return Resolved(cwd, command, env, spec.expand("output", spec.output), work_root, repo_commit(cwd))


def _check_executable(spec: MethodSpec, program: str, cwd: Path, env: dict[str, str]) -> None:
    if names_in(program) and not set(names_in(program)) <= {"cwd", "spec_dir"}:
        return  # decided per run ({device}, {work_root}): checked when it starts
    program = fill(program, {"cwd": str(cwd), "spec_dir": str(spec.spec_dir)})
    if os.sep in program or (os.altsep and os.altsep in program):
        path = Path(program).expanduser()
        path = path if path.is_absolute() else cwd / path
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise spec.error("command[0]", f"{path} is not an executable file (for a script, run it with its "
                             "environment's python: [\"/path/to/env/bin/python\", \"script.py\", ...])")
    elif shutil.which(program, path=env.get("PATH", os.environ.get("PATH"))) is None:
        raise spec.error("command[0]", f"{program!r} is not on PATH; give the absolute path of the executable "
                         "(e.g. your conda environment's bin/python)")


@dataclass
class ExternalMethod(Method):
    """Base of the classes :func:`build_method_class` makes from specs; options are runtime-only."""

    spec: ClassVar[MethodSpec]
    resolved: ClassVar[Resolved]
    timeout_s: float = runtime_option(1800.0)
    keep_work: bool = runtime_option(False)

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s!r}")
        self._worker: Worker | None = None
        self._start_failures: list[str] = []
        self._session: Path | None = None
        self._failed_cases = 0
        self._last_worker_tail = "no output on stderr"
        self._worker_starts = 0

    def config(self) -> dict[str, Any]:
        config = super().config()
        config["spec"] = self.spec.content
        commit = self.resolved.commit
        config["code"] = {"git_commit": commit} if commit else {
            "git_commit": None, "note": "cwd is not a git checkout: changes to its code are not tracked"}
        return config

    # --- run lifecycle -------------------------------------------------------------------------------

    def setup(self) -> None:
        self.resolved.work_root.mkdir(parents=True, exist_ok=True)
        self._session = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=self.resolved.work_root))
        self._failed_cases = 0

    def teardown(self) -> None:
        self._stop_worker()
        if self._session is not None:
            if self._failed_cases == 0 and not self.keep_work:
                for log in self._session.glob("worker-*.stderr.log"):
                    log.unlink()
            try:
                self._session.rmdir()  # only when empty: failed cases keep their folders
            except OSError:
                pass
            self._session = None

    # --- one case ------------------------------------------------------------------------------------

    def edit(self, case: Case, *, seed: int) -> EditResult:
        if self._session is None:
            self.setup()
        assert self._session is not None
        work_dir = Path(tempfile.mkdtemp(prefix=f"{case.id}.", dir=self._session))
        try:
            result = self._edit_in(case, seed, work_dir)
        except ExternalFailure as exc:
            self._failed_cases += 1
            raise ExternalFailure(f"{self.name}: {exc}; work folder kept: {work_dir}") from None
        except Exception:
            self._failed_cases += 1
            raise
        if not self.keep_work:
            shutil.rmtree(work_dir, ignore_errors=True)
        return result

    def _edit_in(self, case: Case, seed: int, work_dir: Path) -> EditResult:
        from tvbench_adapters.external.layouts import case_folder, write_layout  # numpy: not for `tvbench ls`

        phases: dict[str, float] = {}
        clock = time.perf_counter()
        input_root = work_dir / "input"
        input_dir, category = case_folder(self.spec.layout, case, input_root)
        folders = {**self._static_values(), "case_id": case.id, "seed": str(seed), "seed32": str(seed % 2**32),
                   "work_dir": str(work_dir), "input_root": str(input_root), "input_dir": str(input_dir),
                   "category": category or ""}
        output = self._absolute(Path(fill(self.resolved.output, folders)))
        files, facts = write_layout(self.spec.layout, case, input_root, inputs=self.inputs, seed=seed, output=output)
        source_size = case.open_image("source").size
        request = self._request(case, seed, work_dir, output, files, source_size)
        before = _signature(output)
        phases["prepare"] = round(time.perf_counter() - clock, 4)
        clock = time.perf_counter()
        if self.spec.mode == "process":
            self._run_process(request, work_dir)
        else:
            answer, started = self._ask_worker(request)
            if started is not None:
                phases["worker_start"] = round(started, 4)
            if answer["tvbench"] == "refused":
                return EditResult.refusal(str(answer.get("reason") or "refused by the worker"), **facts)
            if answer["tvbench"] == "error":
                message = " ".join(str(answer.get("message") or "no message").split())
                raise ExternalFailure(f"the worker reported an error: {message}")
            facts.update(_worker_facts(answer))
            if answer.get("output"):
                output = self._absolute(Path(str(answer["output"])))
        phases["command" if self.spec.mode == "process" else "edit"] = round(time.perf_counter() - clock, 4)
        clock = time.perf_counter()
        image = _read_output(output, before, lambda: self._tail_for(work_dir))
        if image.size != source_size:
            facts["native_size"] = list(image.size)
            image = image.resize(source_size, Image.BICUBIC)
        phases["read"] = round(time.perf_counter() - clock, 4)
        facts["phases"] = {**phases, **facts.get("phases", {})}
        return EditResult(image=image, facts=facts)

    def _static_values(self) -> dict[str, str]:
        return {"cwd": str(self.resolved.cwd), "spec_dir": str(self.spec.spec_dir), "device": self.runtime.device,
                "work_root": str(self._session)}

    def _absolute(self, path: Path) -> Path:
        """Relative output paths are relative to the command's cwd (where a script's ``./results`` land)."""
        path = path.expanduser()
        return path if path.is_absolute() else self.resolved.cwd / path

    def _request(self, case: Case, seed: int, work_dir: Path, output: Path, files: dict[str, str],
                 source_size: tuple[int, int]) -> dict[str, Any]:
        """Every per-case value, typed (the worker's request; placeholders are its string forms)."""
        request: dict[str, Any] = {
            "id": case.id, "case_id": case.id, "seed": seed, "seed32": seed % 2**32, "work_dir": str(work_dir),
            "input_root": str(work_dir / "input"), "output": str(output), **files,
            "cwd": str(self.resolved.cwd), "spec_dir": str(self.spec.spec_dir), "work_root": str(self._session),
        }
        if self.uses_device:
            request["device"] = self.runtime.device
        request["width"], request["height"] = source_size
        if "caption" in self.inputs:
            request["caption"] = case.caption or ""
        if "instruction" in self.inputs:
            request["instruction"] = case.instruction or ""
        if self.inputs & {"caption", "instruction"}:
            from tvbench_adapters.external.layouts import case_prompt

            request["prompt"] = case_prompt(case, self.inputs)
        if "points" in self.inputs:
            request["points"] = [list(pair) for pair in case.points]
        return request

    # --- process mode --------------------------------------------------------------------------------

    def _run_process(self, request: dict[str, Any], work_dir: Path) -> None:
        values = {key: _as_text(value) for key, value in request.items()}
        argv = [fill(item, values) for item in self.resolved.command]
        env = self._environment(values)
        try:
            finished = run_command(argv, cwd=self.resolved.cwd, env=env, timeout=self.timeout_s,
                                   stdout=work_dir / "stdout.log", stderr=work_dir / "stderr.log")
        except OSError as exc:
            raise ExternalFailure(f"cannot run {argv[0]!r}: {exc.strerror or exc}") from None
        if finished.timed_out:
            raise ExternalFailure(f"timed out after {self.timeout_s:g} s (process group killed); "
                                  f"{self._tail_for(work_dir)}")
        if finished.returncode != 0:
            code = finished.returncode
            how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
            raise ExternalFailure(f"the command {how}; {self._tail_for(work_dir)}")

    def _environment(self, values: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")  # a crash's last words reach the log
        env.update({key: fill(value, values) for key, value in self.resolved.env.items()})
        return env

    def _tail_for(self, work_dir: Path) -> str:
        if self.spec.mode == "worker":
            return self._worker.output_tail() if self._worker is not None else self._last_worker_tail
        errors = file_tail(work_dir / "stderr.log")
        if errors:
            return f"stderr: {errors}"
        printed = file_tail(work_dir / "stdout.log")
        return f"stdout: {printed}" if printed else "no output on stderr or stdout"

    # --- worker mode ---------------------------------------------------------------------------------

    def _ask_worker(self, request: dict[str, Any]) -> tuple[dict[str, Any], float | None]:
        started = None
        if self._worker is None:
            started = self._start_worker()
        assert self._worker is not None
        try:
            answer = self._worker.edit(request, self.timeout_s)
        except WorkerError as exc:
            tail = self._worker.output_tail()
            self._stop_worker(grace=0.0)
            raise ExternalFailure(f"{exc}; {tail}; a fresh worker starts for the next case") from None
        return answer, started

    def _start_worker(self) -> float:
        if len(self._start_failures) >= MAX_START_FAILURES:
            raise ExternalFailure(f"the worker failed to start {len(self._start_failures)} times in a row, so it is "
                                  f"not started again in this run; last time: {self._start_failures[-1]}")
        assert self._session is not None
        static = self._static_values()
        argv = [fill(item, static) for item in self.resolved.command]
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update({key: fill(value, static) for key, value in self.resolved.env.items()})
        self._worker_starts += 1  # one log per worker, so an error's tail is this worker's own
        worker = Worker(argv, cwd=self.resolved.cwd, env=env,
                        stderr_log=self._session / f"worker-{self._worker_starts}.stderr.log")
        try:
            seconds = worker.start(self.spec.startup_timeout_s)
        except WorkerError as exc:
            tail = worker.output_tail()
            worker.stop(grace=0.0)
            self._start_failures.append(f"{exc}; {tail}")
            raise ExternalFailure(f"the worker did not start: {exc}; {tail}") from None
        self._start_failures.clear()
        self._worker = worker
        return seconds

    def _stop_worker(self, grace: float | None = None) -> None:
        if self._worker is not None:
            self._last_worker_tail = self._worker.output_tail()
            if grace is None:
                self._worker.stop()
            else:
                self._worker.stop(grace)
            self._worker = None


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


def _read_output(path: Path, before: tuple[int, int, int] | None, tail: Callable[[], str]) -> Image.Image:
    """The command's image; missing, stale (left by an earlier run) or undecodable is an :class:`ExternalFailure`."""
    now = _signature(path)
    if now is None:
        raise ExternalFailure(f"wrote no output at {path}; {tail()}")
    if before is not None and now == before:
        raise ExternalFailure(f"did not write {path} (the file there predates this case); {tail()}")
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ExternalFailure(f"output {path} is not a readable image ({reason})") from None


def _worker_facts(answer: dict[str, Any]) -> dict[str, Any]:
    facts = answer.get("facts")
    if facts is None:
        return {}
    if not isinstance(facts, dict):
        raise ExternalFailure(f"the worker's facts must be a JSON object, got {type(facts).__name__}")
    return facts


def build_method_class(spec: MethodSpec, resolved: Resolved | None = None) -> type[ExternalMethod]:
    """A :class:`Method` subclass for ``spec`` (resolved on this machine; raises SpecError if it cannot run)."""
    resolved = resolved or resolve(spec)
    namespace = {
        "name": spec.name, "inputs": spec.inputs, "version": spec.version, "spec": spec, "resolved": resolved,
        "summary": spec.summary or f"external command ({spec.mode} mode, {spec.layout} layout)",
        # the command picks its own GPU unless the spec passes {device}: only then does --device auto look for one
        "uses_device": any("device" in names_in(template) for template in (*spec.command, *spec.env.values())),
        "__doc__": f"External method from {spec.path}.", "__module__": __name__,
    }
    class_name = "External_" + "".join(ch if ch.isalnum() else "_" for ch in spec.name)
    fields = [("timeout_s", float, runtime_option(spec.timeout_s)), ("keep_work", bool, runtime_option(spec.keep_work))]
    return dataclasses.make_dataclass(class_name, fields, bases=(ExternalMethod,), namespace=namespace)

