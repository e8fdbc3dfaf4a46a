"""Benchmark cases: the schema, its validation, and the readers and writers of each storage format."""

from tvbench.cases.benchmark import Benchmark
from tvbench.cases.case import SUBTASKS, Case, DragPair, ImageRef, check_case_id
from tvbench.cases.folder import read_folder, write_folder
from tvbench.cases.hf import read_hf, to_hf_dataset, write_hf
from tvbench.cases.loaders import load_benchmark

__all__ = [
    "SUBTASKS", "Benchmark", "Case", "DragPair", "ImageRef", "check_case_id", "load_benchmark",
    "read_folder", "read_hf", "to_hf_dataset", "write_folder", "write_hf",
]
