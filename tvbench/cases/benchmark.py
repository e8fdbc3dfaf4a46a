"""A benchmark: an ordered set of cases with a content hash that identifies it in every result file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from tvbench.cases.case import Case, check_content
from tvbench.errors import BenchmarkError, CaseError, InvalidBenchmark, UnknownNameError
from tvbench.io import canonical_json, sha256_hex
from tvbench.progress import track
from tvbench.registry import suggest

HASH_SCHEMA = 1


@dataclass
class Benchmark:
    """Cases plus where they came from. ``hash`` is set once every case has passed :meth:`validate`.

    ``read_errors`` holds the records that could not become cases (bad JSON, unsafe ids, ...), so that
    :meth:`validate` reports them together with the problems found in the images of the other cases.
    """

    name: str
    spec: str
    cases: list[Case]
    hash: str | None = None
    info: dict = field(default_factory=dict)
    read_errors: list[CaseError] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._by_id = {case.id: case for case in self.cases}

    def __len__(self) -> int:
        return len(self.cases)

    def __iter__(self) -> Iterator[Case]:
        return iter(self.cases)

    def __getitem__(self, case_id: str) -> Case:
        try:
            return self._by_id[case_id]
        except KeyError:
            raise UnknownNameError(f"benchmark {self.name!r} has no case {case_id!r}"
                                   f"{suggest(case_id, self._by_id)}") from None

    def __contains__(self, case_id: object) -> bool:
        return case_id in self._by_id

    @property
    def short_hash(self) -> str:
        return (self.hash or "unvalidated").split(":")[-1][:12]

    def validate(self, progress: bool = False) -> list[CaseError]:
        """Decode every image and check every case; on success, compute the content hash.

        Returns all problems found (one per case at most), never raising for a bad case.
        """
        errors: list[CaseError] = list(self.read_errors)
        digests: dict[str, dict[str, str]] = {}
        for case in track(self.cases, "validating", enabled=progress):
            try:
                digests[case.id] = check_content(case)
            except CaseError as exc:
                errors.append(exc)
        if not errors:
            self.hash = content_hash(self.cases, digests)
        return errors

    def require_valid(self, progress: bool = False) -> "Benchmark":
        errors = self.validate(progress=progress)
        if errors:
            raise InvalidBenchmark(self.spec, errors)
        return self

    def describe(self) -> dict:
        """What result files record about the benchmark."""
        return {"name": self.name, "spec": self.spec, "hash": self.hash, "n_cases": len(self.cases)}


def check_unique_ids(cases: list[Case]) -> list[CaseError]:
    """Ids must differ even ignoring case, since they become file names on case-insensitive disks too."""
    seen: dict[str, str] = {}
    errors = []
    for case in cases:
        key = case.id.lower()
        if key in seen:
            same = "duplicates" if seen[key] == case.id else f"collides with {seen[key]!r} on case-insensitive disks"
            errors.append(CaseError(case.id, "id", f"{same} an earlier case"))
        else:
            seen[key] = case.id
    return errors


def build_benchmark(name: str, spec: str, cases: list[Case], errors: list[CaseError],
                    info: dict | None = None) -> Benchmark:
    """The common last step of every reader: id checks; problems are kept for :meth:`Benchmark.validate`."""
    errors = errors + check_unique_ids(cases)
    if not cases and not errors:
        raise BenchmarkError(f"{spec}: the benchmark has no cases")
    return Benchmark(name=name, spec=spec, cases=cases, info=info or {}, read_errors=errors)


def content_hash(cases: list[Case], digests: dict[str, dict[str, str]]) -> str:
    """sha256 over every case's text record and the pixel digests of its images, in id order."""
    payload = {
        "schema": HASH_SCHEMA,
        "cases": [{**case.text_record(), "images": digests[case.id]} for case in sorted(cases, key=lambda c: c.id)],
    }
    return "sha256:" + sha256_hex(canonical_json(payload))
