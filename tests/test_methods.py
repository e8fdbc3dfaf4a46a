"""Built-in methods, option parsing, and the input restriction that keeps ground truth from methods."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import textured, write_bench

from tvbench.cases import load_benchmark
from tvbench.errors import CaseError, ConfigError
from tvbench.methods import Method, create_method, input_letters, restrict_case


@pytest.fixture
def bench(small_bench):
    return load_benchmark(small_bench)


def test_restriction_hides_what_a_method_does_not_declare(bench):
    case = bench["case-0"]
    seen = restrict_case(case, frozenset({"image", "points"}))
    assert seen.target is None and seen.mask_target is None and seen.dense_points == ()
    assert seen.mask_source is None and seen.instruction is None and seen.points == case.points
    everything = restrict_case(case, frozenset({"image", "target", "mask", "instruction", "points"}))
    assert everything.target is case.target and everything.instruction == case.instruction


def test_table1_letters():
    assert input_letters({"image", "mask", "points"}) == "M+T"
    assert input_letters({"image", "instruction", "points"}) == "T+I"
    assert input_letters({"image"}) == "-"


def test_identity_and_oracle(bench):
    case = bench["case-1"]
    for name, role in (("identity", "source"), ("oracle", "target")):
        edited = create_method(name).edit(case, seed=0)
        assert np.array_equal(np.asarray(edited), np.asarray(case.open_image(role)))
    with pytest.raises(CaseError, match="oracle needs a ground-truth target"):
        create_method("oracle").edit(dataclasses.replace(case, target=None), seed=0)


@dataclasses.dataclass
class Options(Method):
    name = "options"
    ratio: float = 1.0
    steps: int = 10
    flag: bool = False
    prompt: str = ""
    maybe: int | None = None

    def edit(self, case, *, seed):
        return case.open_image("source")


def test_set_values_are_typed():
    method = Options.from_options({"ratio": "2", "steps": "30", "flag": "true", "prompt": "a cat", "maybe": "null"})
    assert (method.ratio, method.steps, method.flag, method.prompt, method.maybe) == (2.0, 30, True, "a cat", None)
    assert method.config()["options"]["ratio"] == 2.0


@pytest.mark.parametrize("options, message", [
    ({"steps": "3.5"}, "option 'steps' must be int"),
    ({"flag": "maybe"}, "option 'flag' must be bool"),
    ({"ratio": "true"}, "option 'ratio' must be float"),
    ({"nope": "1"}, "has no option 'nope'"),
])
def test_bad_set_values(options, message):
    with pytest.raises(ConfigError, match=message):
        Options.from_options(options)


def test_tps_option_validation():
    with pytest.raises(ConfigError, match="anchor_spacing"):
        create_method("tps-warp", {"anchor_spacing": "1"})


def _blob_case(tmp_path, mask: bool):
    """A textured image with a bright square at the handle; the drag moves it 20 px right."""
    source = textured(256, 192, seed=9).copy()
    source[40:56, 30:46] = [255, 255, 0]
    record = {"id": "blob", "source": "s.png", "points": [[38, 48, 58, 48]]}
    images = {"s.png": source}
    if mask:
        region = np.zeros((192, 256), np.uint8)
        region[24:72, 16:96] = 255
        images["m.png"] = region
        record["mask_source"] = "m.png"
    return load_benchmark(write_bench(tmp_path / "blob", [record], images))["blob"], source


@pytest.mark.parametrize("mask", [False, True])
def test_tps_warp_moves_the_handle_content_to_the_target(tmp_path, mask):
    case, source = _blob_case(tmp_path, mask)
    method = create_method("tps-warp")
    edited = np.asarray(method.edit(restrict_case(case, method.inputs), seed=0)).astype(int)
    assert edited.shape == source.shape
    assert np.abs(edited[48, 58] - [255, 255, 0]).max() <= 8  # the handle's colour arrived at the target
    assert np.abs(edited[48, 38] - source[48, 38]).max() > 40  # and left the handle
    far = (slice(150, 192), slice(200, 256))  # far from the drag and outside the mask: untouched
    assert np.abs(edited[far] - source[far]).max() <= 2


def test_tps_warp_without_points_returns_the_source(tmp_path):
    case, source = _blob_case(tmp_path, mask=False)
    edited = create_method("tps-warp").edit(dataclasses.replace(case, points=()), seed=0)
    assert np.array_equal(np.asarray(edited), source)
