"""Published tables as reference rows (tvbench/reference/), `tvbench reproduce` and `tvbench gate --reference`.

The paper's numbers are checked digit for digit against the paper's text, parsed here independently of the data
file; the comparison and the gate run on hand-built summaries; the commands run through the installed entry point.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import run_tvbench
from tvbench.errors import ConfigError
from tvbench.reference import (NO_INTERVAL, NO_VALUE, NOT_REPRODUCED, REPRODUCED, compare_to_reference,
                               load_reference, paper_ids)

REPO = Path(__file__).resolve().parent.parent
PAPER_TEXT = next((p for p in (Path("/work/shared/paper/tv-edit-paper.txt"),
                               REPO.parent / "shared" / "paper" / "tv-edit-paper.txt") if p.is_file()), None)
DATA = REPO / "tvbench" / "reference" / "paper.json"
F5_METHODS = {"DragDiffusion": "dragdiffusion", "DragNoise": "dragnoise", "AdaptiveDrag": "adaptivedrag",
              "CLIPDrag": "clipdrag", "GoodDrag": "gooddrag", "LightningDrag": "lightningdrag",
              "DragLoRA": "draglora", "GeoDrag": "geodrag", "TV-Edit-Qwen": "tvedit-qwen"}
needs_paper = pytest.mark.skipif(PAPER_TEXT is None, reason="the paper's text (shared/paper) is not here")


def paper_lines() -> list[str]:
    return PAPER_TEXT.read_text(encoding="utf-8").splitlines()


def block_after(caption: str, stop: re.Pattern) -> list[str]:
    """The lines after the caption line that starts with ``caption``, up to the first line matching ``stop``."""
    lines = paper_lines()
    start = next(i for i, line in enumerate(lines) if line.startswith(caption))
    out = []
    for line in lines[start + 2:]:  # caption, then the header line
        if stop.match(line):
            break
        out.append(line)
    return out


def data_table(key: str) -> dict:
    return json.loads(DATA.read_text(encoding="utf-8"))["tables"][key]


# --- the numbers, digit for digit ----------------------------------------------------------------------------------


@needs_paper
def test_table1_equals_the_paper_text_cell_by_cell():
    row_re = re.compile(r"^(?:\\rowcolor\S*\s+)+(?P<name>.+?)\s+(?P<input>[MPTI](?:\+[MPTI])*)\s+"
                        r"(?P<values>(?:\S+\s+){6}\S+)\s*$")
    lines = block_after("Table 1: Quantitative comparison", re.compile(r"^\s*$"))
    parsed = [row_re.match(line) for line in lines if line.startswith("\\rowcolor")]  # after two header lines
    assert all(parsed) and len(parsed) == 13
    rows = data_table("table1")["rows"]
    assert len(rows) == 13
    for match, row in zip(parsed, rows):
        assert row["printed"] == match["name"]
        assert row["input"] == match["input"]
        assert row["values"] == match["values"].split()  # every cell, as printed (".8290" keeps its zero)
    reference = load_reference("paper:table1")
    assert len(reference.rows) == 13 * 7
    assert [r.printed for r in reference.rows] == [v for match in parsed for v in match["values"].split()]
    assert all(r.value == float(r.printed) for r in reference.rows)


@needs_paper
def test_table_f5_equals_the_paper_text_cell_by_cell():
    row_re = re.compile(r"^(?P<name>.+?)\s+(?P<if>\d\.\d\d)\s+(?P<md>\d+\.\d\d)$")
    parsed = [row_re.match(line) for line in block_after("Table F.5:", re.compile(r"^\s*$"))]
    assert all(parsed) and len(parsed) == 9
    rows = data_table("f5")["rows"]
    assert [row["printed"] for row in rows] == [m["name"] for m in parsed]
    assert [row["values"] for row in rows] == [[m["if"], m["md"]] for m in parsed]
    reference = load_reference("paper:f5")
    cells = {(r.published_name, r.metric): r for r in reference.rows}
    assert len(cells) == 18
    for match, row in zip(parsed, rows):
        assert cells[(row["method"], "dragbench_if")].printed == match["if"]
        assert cells[(row["method"], "dragbench_md_dift")].printed == match["md"]
    assert {m.name: m.tvbench for m in reference.methods} == F5_METHODS
    assert cells[("TV-Edit-Qwen", "dragbench_md_dift")].value == 17.31
    assert cells[("GeoDrag", "dragbench_if")].higher_is_better is True
    assert cells[("GeoDrag", "dragbench_md_dift")].higher_is_better is False


@needs_paper
@pytest.mark.parametrize("key, caption, stop", [
    ("e-architecture", "Table E.2:", r"^Table E\.3:"),
    ("e-timestep", "Table E.3:", r"^Table E\.4:"),
    ("e-blocks", "Table E.4:", r"^\s*$"),
])
def test_appendix_e_ablations_equal_the_paper_text(key, caption, stop):
    lines = block_after(caption, re.compile(stop))
    assert len(lines) == 4
    rows = data_table(key)["rows"]
    for line, row in zip(lines, rows):
        tokens = line.split()
        assert tokens[-4:] == row["values"]
        assert line.startswith(row["printed"])  # E.3 prints "Beta(1,1)\mathrm{Beta}(1,1)": the plain text first
    # each ablation's full-model row is Table 1's TV-Edit-Qwen, cell for cell
    table1 = {(r.published_name, r.metric): r.printed for r in load_reference("paper:table1").rows}
    full = [r for r in load_reference(f"paper:{key}").rows if r.tvbench_method == "tvedit-qwen" and r.metric]
    assert full and all(table1[("TV-Edit-Qwen", r.metric)] == r.printed for r in full)


def test_names_map_once_to_registered_methods_and_metrics():
    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), f"duplicate keys: {keys}"
        return dict(pairs)

    data = json.loads(DATA.read_text(encoding="utf-8"), object_pairs_hook=no_duplicates)
    names = [entry["tvbench"] for entry in data["methods"].values() if entry["tvbench"]]
    assert len(names) == len(set(names))  # one published name per tvbench method: the mapping lives once
    from tvbench.methods import METHODS
    from tvbench.metrics import METRICS

    external = {entry["tvbench"] for entry in data["methods"].values() if "external" in entry.get("runs", "")}
    assert set(names) - external <= set(METHODS.names())
    assert {e["tvbench"] for e in data["metrics"].values() if e["tvbench"]} <= set(METRICS.names())
    for entry in list(data["methods"].values()) + list(data["metrics"].values()):
        assert entry["tvbench"] is not None or entry["note"]  # what tvbench lacks says why
    for table in data["tables"].values():
        assert table["table"] and table["where"] and table["benchmark"] and "page" in table
    assert paper_ids() == ["paper:table1", "paper:f5", "paper:e-architecture", "paper:e-timestep", "paper:e-blocks"]


# --- errors --------------------------------------------------------------------------------------------------------


def test_unknown_spec_lists_the_tables():
    with pytest.raises(ConfigError, match=r"unknown reference 'paper:f6': choose paper:table1, paper:f5, "
                                          r"paper:e-architecture"):
        load_reference("paper:f6")
    with pytest.raises(ConfigError, match="no such file"):
        load_reference("missing-reference.json")


def lab_file(tmp_path: Path, **changes) -> Path:
    data = {"format": "tvbench.reference", "version": 1, "source": {"title": "A lab's port", "short": "Lab 2026"},
            "methods": {"Identity": {"tvbench": "identity"}, "TPS warp": {"tvbench": "tps-warp"},
                        "Ours": {"tvbench": None, "note": "not released"}},
            "metrics": {"IF": {"tvbench": "dragbench_if"}, "MD": {"tvbench": "dragbench_md"}},
            "tables": {"t1": {"table": "Table 2", "title": "lab numbers", "benchmark": "a small folder",
                              "columns": [{"metric": "IF", "arrow": "↑"}, {"metric": "MD", "arrow": "↓"}],
                              "rows": [{"method": "Identity", "values": [1.0, "39.9"]},
                                       {"method": "TPS warp", "values": ["0.98", 12.5]},
                                       {"method": "Ours", "values": [0.9, 1]}]}}}
    for dotted, value in changes.items():
        target = data
        *path, last = dotted.split("__")
        for key in path:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[int(last) if isinstance(target, list) else last] = value
    path = tmp_path / "lab.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_a_lab_file_loads_like_the_paper(tmp_path):
    reference = load_reference(lab_file(tmp_path))
    assert reference.id.endswith("lab.json#t1") and reference.table == "Table 2"
    assert [(r.tvbench_method, r.metric, r.value) for r in reference.rows][:2] == [
        ("identity", "dragbench_if", 1.0), ("identity", "dragbench_md", 39.9)]
    assert [r.tvbench_method for r in reference.rows if r.published_name == "Ours"] == [None, None]


@pytest.mark.parametrize("changes, message", [
    ({"tables__t1__rows__0__values": [1.0]}, r"row 1 \(Identity\) has 1 values for 2 columns"),
    ({"tables__t1__rows__1__values": ["0.98", "many"]}, r"row 2 \(TPS warp\), column MD: 'many' is not a number"),
    ({"tables__t1__rows__0__method": "Nobody"}, r"row 1: method 'Nobody' is not in 'methods'"),
    ({"metrics__IF": {"tvbench": "dragbench_iff"}}, r"'dragbench_iff' is not a tvbench metric; did you mean"),
    ({"tables__t1__columns__1__arrow": "↑"}, r"column 2 \(MD\) is printed ↑ but tvbench's dragbench_md is lower"),
    ({"format": "csv"}, r"format must be 'tvbench.reference'"),
])
def test_malformed_file_is_one_line_naming_file_and_problem(tmp_path, changes, message):
    path = lab_file(tmp_path, **changes)
    with pytest.raises(ConfigError, match=message) as info:
        load_reference(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_invalid_json_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"format": "tvbench.reference",\n "version": 1,,}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken.json: not valid JSON: .* line 2"):
        load_reference(path)


# --- comparing -----------------------------------------------------------------------------------------------------


def stats(value, low=None, high=None, headline="mean", n=50):
    out = {headline: value, "n": n, "applicable": 50, "coverage": n / 50}
    if headline != "mean":
        out["mean"] = None if value is None else value + 1.0  # must not be read: the headline is pooled
    out["ci"] = {"low": low, "high": high, "level": 0.95, "method": "percentile"} if low is not None else None
    return out


def summary(methods: dict) -> dict:
    return {"kind": "tvbench.scores", "schema_version": 2,
            "benchmark": {"name": "dragbench", "hash": "sha256:x", "n_cases": 50},
            "metrics": {"dragbench_if": {"headline": "mean", "higher_is_better": True},
                        "dragbench_md_dift": {"headline": "pooled_mean", "higher_is_better": False}},
            "methods": {name: {"method": name, "metrics": metrics} for name, metrics in methods.items()}}


def test_compare_to_reference_differences_and_verdicts():
    scores = summary({
        "dragdiffusion": {"dragbench_if": stats(0.87, 0.86, 0.885),  # 0.88 inside
                          "dragbench_md_dift": stats(40.0, 35.0, 45.0, headline="pooled_mean")},  # 32.13 outside
        "gooddrag": {"dragbench_if": stats(0.9)},  # no interval
        "clipdrag": {"dragbench_if": stats(None, n=0)},  # scored, no value
        "clipdrag-unit": {"dragbench_if": stats(0.88, 0.8, 0.9)},  # a variant: never compared as clipdrag
        "identity": {"dragbench_if": stats(1.0, 1.0, 1.0)},  # not in the table
    })
    rows = {(r["method"], r["metric"]): r for r in compare_to_reference(scores, load_reference("paper:f5"))}
    assert set(rows) == {("dragdiffusion", "dragbench_if"), ("dragdiffusion", "dragbench_md_dift"),
                         ("gooddrag", "dragbench_if"), ("clipdrag", "dragbench_if")}
    cell = rows[("dragdiffusion", "dragbench_if")]
    assert cell["verdict"] == REPRODUCED and cell["published"] == 0.88 and cell["published_printed"] == "0.88"
    assert cell["difference"] == pytest.approx(-0.01) and (cell["ci_low"], cell["ci_high"]) == (0.86, 0.885)
    md = rows[("dragdiffusion", "dragbench_md_dift")]
    assert md["verdict"] == NOT_REPRODUCED and md["tvbench"] == 40.0 and md["difference"] == pytest.approx(7.87)
    assert md["higher_is_better"] is False and md["published_name"] == "DragDiffusion"
    assert rows[("gooddrag", "dragbench_if")]["verdict"] == NO_INTERVAL
    assert rows[("gooddrag", "dragbench_if")]["difference"] == pytest.approx(0.9 - 0.87)
    assert rows[("clipdrag", "dragbench_if")]["verdict"] == NO_VALUE
    assert rows[("clipdrag", "dragbench_if")]["difference"] is None
    # the interval's bounds count as inside
    edge = summary({"dragdiffusion": {"dragbench_if": stats(0.9, 0.88, 0.95)}})
    assert compare_to_reference(edge, load_reference("paper:f5"))[0]["verdict"] == REPRODUCED


# --- the commands --------------------------------------------------------------------------------------------------


def test_reproduce_f5_dry_run_lists_the_nine_methods_and_their_needs(small_bench):
    result = run_tvbench("reproduce", "f5", "--bench", str(small_bench), "--dry-run", "-q")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Table F.5" in out and "benchmark:" in out and "3 cases" in out
    blocks = re.split(r"\n(?=\S)", out)
    for published, name in F5_METHODS.items():
        block = next(b for b in blocks if b.startswith(f"{published} -> {name}: "))
        assert "needs:" in block or "why:" in block, block  # what it needs, or why it cannot run here
        assert "estimate:" in block
    dragdiffusion = next(b for b in blocks if b.startswith("DragDiffusion -> "))
    assert "weights model=stable-diffusion-v1-5/stable-diffusion-v1-5" in dragdiffusion
    assert "settings (the paper states none; the method's defaults)" in dragdiffusion
    assert "≥" in dragdiffusion and "GPU-h" in dragdiffusion  # the README states only its LoRA phase
    assert "unknown" in next(b for b in blocks if b.startswith("DragNoise -> "))
    assert "controller=VCLab-PolyU/TVEdit" in next(b for b in blocks if b.startswith("TV-Edit-Qwen -> "))
    assert "no method 'draglora' is registered" in next(b for b in blocks if b.startswith("DragLoRA -> "))

    subset = run_tvbench("reproduce", "paper:f5", "--bench", str(small_bench), "--dry-run", "--methods",
                         "GoodDrag,dragnoise", "-q")
    assert subset.returncode == 0, subset.stderr
    assert [line.split(" -> ")[0] for line in subset.stdout.splitlines() if " -> " in line] == ["DragNoise",
                                                                                                "GoodDrag"]

    unknown = run_tvbench("reproduce", "f6", "--bench", str(small_bench), "--dry-run")
    assert unknown.returncode == 2 and "choose paper:table1, paper:f5" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1


def test_reproduce_runs_scores_compares_and_resumes(small_bench, tmp_path):
    reference = lab_file(tmp_path)
    out = tmp_path / "results"
    args = ("reproduce", str(reference), "--bench", str(small_bench), "--smoke", "--out", str(out), "-q")
    first = run_tvbench(*args, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "skip Ours: not in tvbench: not released" in first.stderr
    assert "3 edited" in first.stderr
    table = [line.split() for line in first.stdout.splitlines() if line.startswith(("identity ", "tps-warp "))]
    assert [(row[0], row[1]) for row in table] == [("identity", "dragbench_if"), ("identity", "dragbench_md"),
                                                   ("tps-warp", "dragbench_if"), ("tps-warp", "dragbench_md")]
    record = json.loads((out / "reproduce-t1.json").read_text())
    assert [item["method"] for item in record["plan"]] == ["identity", "tps-warp", None]
    assert len(record["comparison"]) == 4 and record["comparison"][0]["published"] == 1.0
    again = run_tvbench(*args, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "0 edited, 3 already done" in again.stderr


def test_gate_with_a_reference_fails_and_passes(tmp_path):
    near = summary({"dragdiffusion": {"dragbench_if": stats(0.875), "dragbench_md_dift":
                                      stats(32.5, headline="pooled_mean")},
                    "tvedit-qwen": {"dragbench_if": stats(0.87)}})
    far = summary({"dragdiffusion": {"dragbench_if": stats(0.80), "dragbench_md_dift":
                                     stats(40.0, headline="pooled_mean")},
                   "tvedit-qwen": {"dragbench_if": stats(0.87)}})
    for name, data in (("near.json", near), ("far.json", far), ("other.json", summary({"identity": {}}))):
        (tmp_path / name).write_text(json.dumps(data))

    def gate(name, *tolerances):
        tol = [arg for t in tolerances for arg in ("--tolerance", t)]
        return run_tvbench("gate", str(tmp_path / name), "--reference", "paper:f5", *tol)

    passed = gate("near.json", "0.02", "dragbench_md_dift=1")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "gate passed: 3 cells" in passed.stderr

    failed = gate("far.json", "0.02", "dragbench_md_dift=1")
    assert failed.returncode == 1
    fails = [line for line in failed.stderr.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 2  # one line per failing cell
    assert fails[0].startswith("FAIL dragdiffusion dragbench_if: |0.8 - 0.88| = 0.08 > tolerance 0.02")
    assert fails[1].startswith("FAIL dragdiffusion dragbench_md_dift: |40 - 32.13| = 7.87 > tolerance 1")

    assert gate("far.json", "0.1", "dragbench_md_dift=8").returncode == 0
    assert gate("other.json", "0.1").returncode == 1  # nothing in common never passes

    untold = gate("near.json", "dragbench_if=0.02")  # MD has no tolerance: published numbers are rounded
    assert untold.returncode == 2 and "needs a tolerance for dragbench_md_dift" in untold.stderr
    both = run_tvbench("gate", str(tmp_path / "near.json"), "--reference", "paper:f5", "--baseline",
                       str(tmp_path / "far.json"), "--tolerance", "1")
    assert both.returncode == 2 and "one of them" in both.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    malformed = run_tvbench("gate", str(tmp_path / "near.json"), "--reference", str(bad), "--tolerance", "1")
    assert malformed.returncode == 2 and malformed.stderr.strip().count("\n") == 0
    assert f"{bad}: not valid JSON" in malformed.stderr
