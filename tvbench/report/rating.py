"""The rating page (``tvbench report RESULTS --format html --rate``): people grade PF and CP like the judge does.

``write_rating_page`` writes ``rate.html`` beside the gallery's page (images under ``rate_files/``): every (case,
method) edit that has an edit file, in an order shuffled with a fixed seed, with the source, the target, the edit,
the instruction and the judge's own rubric (``tvbench/judge/prompts/pf-v1.txt``, ``cp-v1.txt``). Method names are
not shown: each method has an opaque id (``m1``, ``m2`` ... assigned in shuffled order) that the page's data maps
back to the name, so the CSV it saves (a Blob behind a download link) names the methods. The CSV has the columns
``case,method,metric,rater,grade`` that ``tvbench judge agreement`` reads (:func:`tvbench.judge.agreement.
read_ratings`); ungraded items are left out. No network, no external resource: it opens from the file system.
"""

from __future__ import annotations

import html
import json
import random
from pathlib import Path

from PIL import Image

from tvbench.io import atomic_write_text

RATE_PAGE = "rate.html"
RATE_FILES = "rate_files"
IMAGE_SIZE = 384
DEFAULT_SEED = 0
RUBRIC_PROMPTS = {"pf": "pf-v1", "cp": "cp-v1"}


def rubric(kind: str) -> str:
    """The judge's rubric for ``pf`` or ``cp``: its prompt from the points to grade up to the reply format."""
    from tvbench.judge.prompts import PLACEHOLDER, load_prompt

    text = load_prompt(RUBRIC_PROMPTS[kind]).text
    start = text.find(PLACEHOLDER)
    body = text[text.find("\n", start) + 1:] if start >= 0 else text
    end = body.find("Reason briefly")
    return (body[:end] if end >= 0 else body).strip()


def _judge_metrics(summary: dict) -> list[str]:
    from tvbench.judge.canaries import metric_kind

    return [m for m in (summary.get("metrics") or {}) if metric_kind(m)] or ["pf", "cp"]


def _applicable(results: Path, metrics: list[str]) -> dict[tuple[str, str], list[str]]:
    """(case, method) -> the judge metrics that apply there, from scores.jsonl (empty when there is none)."""
    from tvbench.io import read_jsonl
    from tvbench.scoring.files import SCORES_FILE
    from tvbench.scoring.rows import NOT_APPLICABLE

    path = results / SCORES_FILE
    found: dict[tuple[str, str], list[str]] = {}
    if path.is_file():
        for row in read_jsonl(path):
            if row.get("metric") in metrics and row.get("status") != NOT_APPLICABLE:
                found.setdefault((row["case"], row["method"]), []).append(row["metric"])
    return found


def rating_items(results: Path, summary: dict, runs, bench, seed: int = DEFAULT_SEED) -> tuple[list[dict], dict]:
    """The page's items (shuffled with ``seed``) and the opaque method ids: ``{"m1": name, ...}``."""
    from tvbench.judge.canaries import metric_kind
    from tvbench.scoring.edits import match_edit_files

    rng = random.Random(seed)
    names = sorted(run.name for run in runs)
    rng.shuffle(names)
    ids = {name: f"m{k + 1}" for k, name in enumerate(names)}
    metrics = _judge_metrics(summary)
    applicable = _applicable(results, metrics)
    items = []
    case_ids = [case.id for case in bench.cases]
    for run in runs:
        edits = match_edit_files(run.folder, case_ids).by_case
        for case in bench.cases:
            if case.id not in edits:
                continue
            wanted = applicable.get((case.id, run.name)) or [
                m for m in metrics if ("drag" in m) == (not case.instruction)] or metrics
            grades = {}
            for metric in wanted:
                grades.setdefault(metric_kind(metric), metric)  # one grade per rubric: pf, cp
            items.append({"case": case.id, "method": ids[run.name], "instruction": case.instruction or "",
                          "metrics": grades, "edit_path": str(edits[case.id])})
    rng.shuffle(items)
    for k, item in enumerate(items):
        item["id"] = f"item{k + 1}"
    return items, {v: k for k, v in ids.items()}


def _save(image: Image.Image, path: Path) -> None:
    image = image.convert("RGB")
    image.thumbnail((IMAGE_SIZE, IMAGE_SIZE))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def write_rating_page(results: Path, folder: Path, summary: dict, seed: int = DEFAULT_SEED) -> Path:
    """Write ``folder/rate.html`` and ``folder/rate_files/``; returns the page's path."""
    import shutil

    from tvbench.report.gallery import _load_cases
    from tvbench.scoring.edits import open_edit

    results = Path(results) if Path(results).is_dir() else Path(results).parent
    folder = Path(folder)
    files = folder / RATE_FILES
    if files.is_dir():
        shutil.rmtree(files)
    runs, bench, problem = _load_cases(results, summary)
    if bench is None:
        from tvbench.errors import ConfigError

        raise ConfigError(f"--rate: cannot find the cases and edits of {results}: {problem}")
    items, methods = rating_items(results, summary, runs, bench, seed)
    cases = {case.id: case for case in bench.cases}
    saved: set[str] = set()
    for k, item in enumerate(items):
        case = cases[item["case"]]
        stem = f"c{list(cases).index(case.id) + 1}"
        if stem not in saved:
            _save(case.open_image("source"), files / f"{stem}-source.png")
            _save(case.open_image("target"), files / f"{stem}-target.png")
            saved.add(stem)
        _save(open_edit(Path(item.pop("edit_path"))), files / f"{item['id']}-edit.png")
        item["images"] = [f"{RATE_FILES}/{stem}-source.png", f"{RATE_FILES}/{stem}-target.png",
                          f"{RATE_FILES}/{item['id']}-edit.png"]
    data = {"items": items, "methods": methods, "seed": seed,
            "rubrics": {kind: rubric(kind) for kind in RUBRIC_PROMPTS}}
    title = f"tvbench rating: {(summary.get('benchmark') or {}).get('name', '')}"
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n{INTRO}\n"
            f'<div id="items"></div>\n'
            f'<script type="application/json" id="tvbench-rating">{_json_for_html(data)}</script>\n'
            f"<script>{SCRIPT}</script>\n</body></html>\n")
    page_path = folder / RATE_PAGE
    page_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(page_path, page)
    return page_path


def _json_for_html(data: dict) -> str:
    text = json.dumps(data)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def ratings_csv(grades: list[tuple[str, str, str, str, int]]) -> str:
    """The CSV the page saves, from (case, method, metric, rater, grade): the same writer in Python (for tests
    and scripts)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["case", "method", "metric", "rater", "grade"])
    writer.writerows(grades)
    return buffer.getvalue()


INTRO = """<p>Grade each edit as the judge does, from 0 to 4, with the rubrics below. Method names are hidden and
the order is shuffled. Your grades stay in this page until you save them: <label>rater <input id="rater"
value="rater1" size="12"></label> <button id="save">save ratings.csv</button> <a id="download" hidden
download="ratings.csv">ratings.csv</a> <span id="count">0 graded</span></p>
<details><summary>PF rubric (prompt following)</summary><pre id="rubric-pf"></pre></details>
<details><summary>CP rubric (content preservation)</summary><pre id="rubric-cp"></pre></details>"""

STYLE = """body{font-family:system-ui,sans-serif;margin:1em}.item{border:1px solid #ccc;margin:1em 0;padding:.5em}
.item img{max-width:300px;margin-right:.5em}.grades label{margin-right:.6em}pre{white-space:pre-wrap}
.item.done{background:#f3faf3}"""

SCRIPT = r"""
(function () {
  const data = JSON.parse(document.getElementById('tvbench-rating').textContent);
  const grades = {};  // item id -> {pf: n, cp: n}
  document.getElementById('rubric-pf').textContent = data.rubrics.pf;
  document.getElementById('rubric-cp').textContent = data.rubrics.cp;
  const root = document.getElementById('items');
  const el = (tag, attrs, text) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const count = () => {
    let n = 0;
    for (const g of Object.values(grades)) n += Object.keys(g).length;
    document.getElementById('count').textContent = n + ' graded';
  };
  data.items.forEach((item, k) => {
    const box = el('div', {class: 'item', id: item.id});
    box.appendChild(el('h3', {}, (k + 1) + ' of ' + data.items.length + ': ' + item.case));
    box.appendChild(el('p', {}, 'Instruction: ' + (item.instruction || '(none: follow the arrows)')));
    const row = el('div');
    ['source', 'target (a correct edit)', 'edit to grade'].forEach((label, j) => {
      const fig = el('figure', {style: 'display:inline-block'});
      fig.appendChild(el('img', {src: item.images[j], alt: label}));
      fig.appendChild(el('figcaption', {}, label));
      row.appendChild(fig);
    });
    box.appendChild(row);
    for (const kind of Object.keys(item.metrics)) {
      const line = el('div', {class: 'grades'});
      line.appendChild(el('strong', {}, kind.toUpperCase() + ': '));
      for (let g = 0; g <= 4; g++) {
        const label = el('label');
        const input = el('input', {type: 'radio', name: item.id + '-' + kind, value: String(g),
                                   'data-item': item.id, 'data-kind': kind});
        input.addEventListener('change', () => {
          (grades[item.id] = grades[item.id] || {})[kind] = g;
          if (Object.keys(grades[item.id]).length === Object.keys(item.metrics).length) box.classList.add('done');
          count();
        });
        label.appendChild(input);
        label.appendChild(document.createTextNode(' ' + g));
        line.appendChild(label);
      }
      box.appendChild(line);
    }
    root.appendChild(box);
  });
  const field = v => /[",\n\r]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
  window.tvbenchRatingsCSV = function () {
    const rater = document.getElementById('rater').value.trim() || 'rater1';
    const lines = ['case,method,metric,rater,grade'];
    for (const item of data.items) {
      for (const [kind, metric] of Object.entries(item.metrics)) {
        const g = (grades[item.id] || {})[kind];
        if (g === undefined) continue;
        lines.push([item.case, data.methods[item.method], metric, rater, String(g)].map(field).join(','));
      }
    }
    return lines.join('\n') + '\n';
  };
  let url = null;
  document.getElementById('save').addEventListener('click', () => {
    if (url) URL.revokeObjectURL(url);
    url = URL.createObjectURL(new Blob([window.tvbenchRatingsCSV()], {type: 'text/csv'}));
    const link = document.getElementById('download');
    link.href = url;
    link.hidden = false;
    link.click();
  });
})();
"""
