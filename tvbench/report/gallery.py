"""The HTML gallery of a results folder: the leaderboard, then per case the source with its drag arrows, the
target and every method's edit side by side, each with its per-case scores.

``write_gallery(results, out)`` writes a self-contained folder, ``out/index.html`` plus ``out/img/`` (or
``NAME.html`` plus ``NAME_files/`` when ``out`` ends in ``.html``): no network,
no CDN, relative links only, so it opens from the file system and can be copied or zipped as it is. Sorting (by
any metric of any method, or by clicking a leaderboard column), filtering (subtask, category, metric, methods)
and the full-size view run in a small inline script that only reorders and hides elements: every text (case
ids, instructions, captions, method names and options) is escaped on the server side and never parsed as HTML.
"""

from __future__ import annotations

import html
import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from tvbench.errors import TvbenchError, one_line
from tvbench.io import atomic_write_text
from tvbench.metrics import column_order
from tvbench.report.leaderboard import Leaderboard
from tvbench.report.render import html_label, html_notes, html_table
from tvbench.scoring.edits import match_edit_files
from tvbench.scoring.files import REPORT_FOLDERS, SCORES_FILE
from tvbench.scoring.rows import OK

GALLERY_FOLDER = REPORT_FOLDERS[1]
THUMB_SIZE = 192  # px, long side of the thumbnails in the table
IMAGES = "img"


@dataclass
class EditColumn:
    """One method's column: its folder of edits and what to show in its header."""

    name: str
    folder: Path
    inputs: str
    options: str  # what differs from the method's defaults (or every option, when the defaults are not known)
    edits: dict[str, Path] = field(default_factory=dict)  # case id -> edit file, found as scoring finds them
    all_options: str = ""  # every option with its value (the header's hover text)


def _esc(text) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _as_json(value):
    """A value as the manifest holds it (tuples as lists, ...), so a default compares equal to its recorded self."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return value


def _defaults(method: str | None) -> dict | None:
    """The options of the registered method ``method`` with their defaults, or ``None`` if it cannot be loaded here
    (a plugin not installed, a renamed method). The class is imported from its light module (no model library)."""
    if not method:
        return None
    try:
        from tvbench.methods import METHODS
        from tvbench.methods.needs import option_defaults

        return {key: _as_json(value) for key, value in option_defaults(METHODS.load(method)).items()}
    except Exception:  # whatever stops it, the header shows every option, as without a registry
        return None


def _options(manifest: dict | None) -> tuple[str, str]:
    """(shown, on hover) of a run's options: those that differ from its method's defaults (``default options`` if
    none does; every option when the defaults are unknown), and every option with its value."""
    config = (manifest or {}).get("config") or {}
    options = config.get("options") or {}
    every = ", ".join(f"{key}={value}" for key, value in options.items())
    defaults = _defaults(config.get("method"))
    if defaults is None:
        return every, every
    changed = ", ".join(f"{key}={value}" for key, value in options.items()
                        if key not in defaults or defaults[key] != value)
    return (changed or ("default options" if options else "")), every


def _thumbnail(image: Image.Image, path: Path) -> None:
    small = image.convert("RGB")
    small.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.BICUBIC)
    small.save(path, quality=85)


def _links(folder: Path, name: str, stem: str) -> tuple[str, str]:
    """Links to the full image ``name`` and its thumbnail, relative to the page (beside the images folder)."""
    base = folder.relative_to(folder.parent.parent).as_posix()
    return f"{base}/{name}", f"{base}/{stem}.thumb.jpg"


def _save_pair(image: Image.Image, folder: Path, stem: str) -> tuple[str, str]:
    """The full-size PNG and a thumbnail (JPEG) of ``image``."""
    folder.mkdir(parents=True, exist_ok=True)
    image.save(folder / f"{stem}.png")
    _thumbnail(image, folder / f"{stem}.thumb.jpg")
    return _links(folder, f"{stem}.png", stem)


def _copy_edit(path: Path, folder: Path, stem: str) -> tuple[str, str]:
    """The edit file copied byte for byte (what was scored, in its own format), with a thumbnail."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{stem}{path.suffix.lower()}"
    shutil.copyfile(path, folder / name)
    with Image.open(path) as image:
        _thumbnail(image, folder / f"{stem}.thumb.jpg")
    return _links(folder, name, stem)


def _figure(full: str, thumb: str, caption: str) -> str:
    return (f'<figure><a class="zoom" href="{_esc(full)}"><img src="{_esc(thumb)}" '
            f'alt="{_esc(caption)}"></a><figcaption>{_esc(caption)}</figcaption></figure>')


def _value_text(row: dict | None) -> tuple[str, str]:
    """(text shown, data-value) of a score row: the number, or its status."""
    if row is None:
        return "–", ""
    if row["status"] == OK and row["value"] is not None and math.isfinite(row["value"]):
        return f"{row['value']:.4f}", repr(float(row["value"]))
    return str(row["status"]).replace("_", " "), ""


def _group_value(groups: dict, metric: str, group) -> tuple[str, str]:
    """(text, data-value) of a group's statistic (``summary`` methods' ``groups``), or why it is undefined."""
    outcome = (groups.get(metric) or {}).get(str(group)) or {}
    value = outcome.get("value")
    if value is None:
        return (str(outcome.get("status", "–")).replace("_", " ") if outcome else "–"), ""
    return f"{value:.4f}", repr(float(value))


def _scores_list(rows: dict[str, dict], metrics: list[str], declared: dict, groups: dict) -> str:
    """A case's scores. A sub-task metric is a statistic of the case's group: its item shows (and sorts by) the
    group's value; the magnitude cases add what the case itself measured, the displacement achieved and the
    length requested (normalised, as MD_s)."""
    items = []
    for metric in metrics:
        row = rows.get(metric)
        if row is None or row["status"] == "not_applicable":
            continue
        declaration = declared.get(metric, {})
        label = declaration.get("label", metric)
        hint = declaration.get("summary", "")
        if declaration.get("group_statistic") and row.get("group") is not None:
            text, value = _group_value(groups, metric, row["group"])
            label = f"{label} (group {row['group']})"
        else:
            text, value = _value_text(row)
        items.append(f'<li data-metric="{_esc(metric)}" data-value="{value}" title="{_esc(hint)}">'
                     f"{html_label(label)}: <span>{_esc(text)}</span></li>")
    moved = next((rows[m] for m in metrics if m in rows and rows[m].get("requested") is not None
                  and rows[m]["status"] == OK), None)
    if moved is not None:  # the magnitude metrics' per-case measurement, shown once
        items.append(f'<li class="measured" title="{_esc(declared.get(moved["metric"], {}).get("case_value", ""))}">'
                     f'displacement: <span>{moved["value"]:.4f} achieved, {moved["requested"]:.4f} requested'
                     "</span></li>")
    return f'<ul class="scores">{"".join(items)}</ul>'


def _groups(methods: dict, method: str) -> dict:
    """``metric -> group -> outcome`` of one method's sub-task metrics (from the summary)."""
    return {metric: stats["groups"] for metric, stats in (methods.get(method) or {}).get("metrics", {}).items()
            if isinstance(stats, dict) and stats.get("groups")}


def _case_row(case, columns: list[EditColumn], images: Path, k: int, scores: dict, metrics: list[str],
              declared: dict, methods: dict) -> str:
    from tvbench.judge.images import draw_drag_arrows

    folder = images / f"c{k}"
    source = case.open_image("source")
    cells = [_figure(*_save_pair(draw_drag_arrows(source, case.points), folder, "source"),
                     "source with drag arrows" if case.points else "source")]
    if case.target is not None:
        cells.append(_figure(*_save_pair(case.open_image("target"), folder, "target"), "target"))
    else:
        cells.append('<p class="none">no target</p>')
    header = (f'<td class="case"><b>{_esc(case.id)}</b><br><span class="tag">{_esc(case.subtask or "-")}</span> '
              f'<span class="tag">{_esc(case.category or "-")}</span>'
              + (f' <span class="tag">group {_esc(case.group)}</span>' if case.group else "")
              + (f'<p class="instruction">{_esc(case.instruction)}</p>' if case.instruction else "")
              + (f'<p class="caption">{_esc(case.caption)}</p>' if case.caption else "") + "</td>")
    row = [header] + [f"<td>{cell}</td>" for cell in cells]
    for j, column in enumerate(columns):
        edit = column.edits.get(case.id)
        figure = _figure(*_copy_edit(edit, folder, f"m{j}"), column.name) if edit is not None else \
            '<p class="none">no edit</p>'
        listed = _scores_list(scores.get((case.id, column.name), {}), metrics, declared, _groups(methods, column.name))
        row.append(f'<td class="edit" data-method="{_esc(column.name)}">{figure}{listed}</td>')
    return (f'<tr class="case-row" data-order="{k}" data-subtask="{_esc(case.subtask or "")}" '
            f'data-category="{_esc(case.category or "")}">{"".join(row)}</tr>')


def _select(element_id: str, label: str, options: list[tuple[str, str, str]]) -> str:
    """A ``<select>`` of ``(value, text, extra attributes)`` options."""
    choices = "".join(f'<option value="{_esc(value)}"{attributes}>{_esc(text)}</option>'
                      for value, text, attributes in options)
    return f'<label>{_esc(label)} <select id="{element_id}">{choices}</select></label>'


def _controls(subtasks: list[str], categories: list[str], metrics: list[str], declared: dict,
              columns: list[EditColumn]) -> str:
    def label(metric: str) -> str:  # a sub-task metric sorts by its group's statistic
        declaration = declared.get(metric, {})
        return declaration.get("label", metric) + (" (group)" if declaration.get("group_statistic") else "")

    metric_options = [(m, label(m),
                       f' data-higher="{int(bool(declared.get(m, {}).get("higher_is_better", True)))}"')
                      for m in metrics]
    every = [("", "all", "")]
    parts = [
        _select("filter-subtask", "subtask", every + [(s, s, "") for s in subtasks]),
        _select("filter-category", "category", every + [(c, c, "") for c in categories]),
        _select("filter-metric", "metric", every + [(m, text, "") for m, text, _ in metric_options]),
        _select("sort-metric", "sort by", [("", "case order", "")] + metric_options),
        _select("sort-method", "of", [(c.name, c.name, "") for c in columns]),
        _select("sort-direction", "", [("best", "best first", ""), ("worst", "worst first", "")]),
        '<span class="methods">methods: ' + "".join(
            f'<label><input type="checkbox" class="show-method" value="{_esc(c.name)}" checked> {_esc(c.name)}'
            "</label>" for c in columns) + "</span>",
        '<span id="shown"></span>',
    ]
    return f'<div class="controls">{"".join(parts)}</div>'


STYLE = """
body{font-family:system-ui,sans-serif;margin:16px;color:#222}
table{border-collapse:collapse}td,th{padding:4px 8px;border-bottom:1px solid #ddd;vertical-align:top}
table.leaderboard td{text-align:right;white-space:nowrap}
table.leaderboard td:first-child,table.leaderboard td:nth-child(2){text-align:left}
table.leaderboard th{cursor:pointer;user-select:none}table.leaderboard th.sorted{text-decoration:underline}
div.board{overflow-x:auto}
.controls{position:sticky;top:0;background:#f6f6f6;padding:8px;margin:12px 0;display:flex;flex-wrap:wrap;gap:12px;
z-index:2}.controls label{white-space:nowrap}
figure{margin:0}figure img{max-width:192px;max-height:192px;display:block;border:1px solid #ccc}
figcaption{font-size:12px;color:#555}ul.scores{list-style:none;padding:0;margin:4px 0;font-size:12px}
td.case{max-width:220px}.tag{font-size:11px;background:#e8eef8;border-radius:3px;padding:0 4px}
.instruction{font-weight:600}.caption{color:#666;font-size:12px}.none{color:#999}.note{color:#444;font-size:13px}
li.active{background:#fff3b0}tr.hidden,.hidden{display:none}
#lightbox{position:fixed;inset:0;background:rgba(0,0,0,.85);display:flex;align-items:center;justify-content:center;
z-index:10;cursor:zoom-out}#lightbox[hidden]{display:none}#lightbox img{max-width:95vw;max-height:95vh}
"""

SCRIPT = """
(function(){
  const rows = Array.from(document.querySelectorAll('tr.case-row'));
  const body = document.querySelector('#cases tbody');
  const $ = id => document.getElementById(id);
  function valueOf(row, metric, method){
    const cell = Array.from(row.querySelectorAll('td.edit')).find(td => td.dataset.method === method);
    if(!cell) return null;
    const item = Array.from(cell.querySelectorAll('li')).find(li => li.dataset.metric === metric);
    return item && item.dataset.value !== '' ? parseFloat(item.dataset.value) : null;
  }
  function applies(row, metric){
    return Array.from(row.querySelectorAll('li')).some(li => li.dataset.metric === metric);
  }
  function update(){
    const subtask = $('filter-subtask').value, category = $('filter-category').value;
    const metric = $('filter-metric').value;
    const shownMethods = new Set(Array.from(document.querySelectorAll('.show-method:checked')).map(b => b.value));
    let shown = 0;
    for(const row of rows){
      const visible = (!subtask || row.dataset.subtask === subtask) && (!category || row.dataset.category === category)
        && (!metric || applies(row, metric));
      row.classList.toggle('hidden', !visible);
      shown += visible ? 1 : 0;
      for(const li of row.querySelectorAll('li'))
        li.classList.toggle('hidden', !!metric && li.dataset.metric !== metric);
    }
    for(const cell of document.querySelectorAll('[data-method]'))
      cell.classList.toggle('hidden', !shownMethods.has(cell.dataset.method));
    $('shown').textContent = shown + ' of ' + rows.length + ' cases';
    sortRows();
  }
  function sortRows(){
    const metric = $('sort-metric').value, method = $('sort-method').value;
    const option = $('sort-metric').selectedOptions[0];
    let ordered = rows.slice();
    for(const li of document.querySelectorAll('li.active')) li.classList.remove('active');
    if(metric){
      const higher = option.dataset.higher === '1';
      const best = $('sort-direction').value === 'best';
      const sign = (higher === best) ? -1 : 1;
      ordered.sort((a, b) => {
        const va = valueOf(a, metric, method), vb = valueOf(b, metric, method);
        if(va === null && vb === null) return a.dataset.order - b.dataset.order;
        if(va === null) return 1;
        if(vb === null) return -1;
        return sign * (va - vb) || a.dataset.order - b.dataset.order;
      });
      for(const row of rows) for(const cell of row.querySelectorAll('td.edit'))
        if(cell.dataset.method === method) for(const li of cell.querySelectorAll('li'))
          if(li.dataset.metric === metric) li.classList.add('active');
    }
    for(const row of ordered) body.appendChild(row);
  }
  for(const id of ['filter-subtask', 'filter-category', 'filter-metric', 'sort-metric', 'sort-method',
                   'sort-direction']) $(id).addEventListener('change', update);
  for(const box of document.querySelectorAll('.show-method')) box.addEventListener('change', update);
  const board = document.querySelector('table.leaderboard');
  if(board){
    board.querySelectorAll('thead th').forEach((th, index) => th.addEventListener('click', () => {
      const tbody = board.tBodies[0];
      const descending = th.classList.contains('sorted') && !th.classList.contains('descending');
      board.querySelectorAll('th').forEach(h => h.classList.remove('sorted', 'descending'));
      th.classList.add('sorted');
      if(descending) th.classList.add('descending');
      const key = tr => {
        const td = tr.children[index];
        return td.dataset.value !== undefined ? parseFloat(td.dataset.value) : td.textContent.trim();
      };
      const sorted = Array.from(tbody.rows).sort((a, b) => {
        const ka = key(a), kb = key(b);
        const c = (typeof ka === 'number' && typeof kb === 'number') ? ka - kb : String(ka).localeCompare(String(kb));
        return descending ? -c : c;
      });
      for(const tr of sorted) tbody.appendChild(tr);
    }));
  }
  const box = $('lightbox'), big = box.querySelector('img');
  document.addEventListener('click', event => {
    const link = event.target.closest('a.zoom');
    if(link){ event.preventDefault(); big.src = link.getAttribute('href'); big.alt = link.querySelector('img').alt;
              box.hidden = false; return; }
    if(event.target.closest('#lightbox')){ box.hidden = true; big.removeAttribute('src'); }
  });
  document.addEventListener('keydown', event => { if(event.key === 'Escape') box.hidden = true; });
  update();
})();
"""


def _load_cases(results: Path, summary: dict):
    """The runs and the benchmark behind a summary; ``(None, reason)`` when they cannot be found."""
    from tvbench.scoring.runs import discover_runs, resolve_benchmark

    try:
        runs = discover_runs(results)
        spec = None if any(run.manifest for run in runs) else (summary.get("benchmark") or {}).get("spec")
        return runs, resolve_benchmark(runs, spec), None
    except TvbenchError as exc:
        return None, None, one_line(exc)


def gallery_paths(output: Path) -> tuple[Path, Path]:
    """(page, images folder): ``DIR/index.html`` and ``DIR/img/`` for a folder, or ``NAME.html`` and
    ``NAME_files/`` beside it for a path ending in ``.html``."""
    output = Path(output)
    if output.suffix.lower() in (".html", ".htm"):
        return output, output.with_name(f"{output.stem}_files")
    return output / "index.html", output / IMAGES


def write_gallery(results: Path, output: Path, summary: dict, board: Leaderboard) -> Path:
    """Write the gallery to ``output`` (a folder, or a ``.html`` file with its ``_files`` folder beside it);
    returns the path of the page."""
    results = Path(results) if Path(results).is_dir() else Path(results).parent
    index, images = gallery_paths(output)
    if images.is_dir():
        shutil.rmtree(images)  # images of an earlier gallery: the case list may have changed
    runs, bench, problem = _load_cases(results, summary)
    declared = summary.get("metrics", {})
    metrics = column_order(declared)
    cases_html, controls, note = "", "", ""
    if bench is not None:
        methods = summary.get("methods", {})
        ids = [case.id for case in bench.cases]
        columns = []
        for run in runs:
            shown, every = _options(run.manifest)
            columns.append(EditColumn(run.name, run.folder, str(methods.get(run.name, {}).get("inputs", "?")), shown,
                                      match_edit_files(run.folder, ids).by_case, every))
        scores: dict[tuple[str, str], dict[str, dict]] = {}
        if (results / SCORES_FILE).is_file():
            from tvbench.analysis.frames import load_scores

            for row in load_scores(results).to_dict("records"):
                value = row["value"]
                row["value"] = None if value is None or (isinstance(value, float) and math.isnan(value)) else value
                scores.setdefault((row["case"], row["method"]), {})[row["metric"]] = row
        else:
            note = f"<p class=\"note\">No {SCORES_FILE} here: edits are shown without per-case scores.</p>"
        rows = [_case_row(case, columns, images, k, scores, metrics, declared, methods)
                for k, case in enumerate(bench.cases)]
        subtasks = sorted({c.subtask for c in bench.cases if c.subtask})
        category_names = sorted({c.category for c in bench.cases if c.category})
        applicable = [m for m in metrics if any(s.get(m) for s in scores.values())]
        controls = _controls(subtasks, category_names, applicable, declared, columns)
        heads = "".join(f'<th data-method="{_esc(c.name)}">{_esc(c.name)} <span class="tag">{_esc(c.inputs)}</span>'
                        + (f'<br><small class="options" title="{_esc(c.all_options)}">{_esc(c.options)}</small>'
                           if c.options else "") + "</th>" for c in columns)
        cases_html = (f'<table id="cases"><thead><tr><th>case</th><th>source</th><th>target</th>{heads}</tr></thead>'
                      f'<tbody>{"".join(rows)}</tbody></table>')
    else:
        note = f'<p class="note">Cases and edits not shown: {_esc(problem)}</p>'
    bench_info = summary.get("benchmark") or {}
    title = f"tvbench gallery: {bench_info.get('name', '')}"
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_esc(title)}</title>'
            f"<style>{STYLE}</style></head><body>\n<h1>{_esc(title)}</h1>\n{html_notes(board)}\n"
            f'<div class="board">{html_table(board)}</div>\n'
            f"{note}{controls}\n{cases_html}\n"
            '<div id="lightbox" hidden><img alt=""></div>\n'
            f'<script type="application/json" id="tvbench-summary">{_json_for_html(summary)}</script>\n'
            f"<script>{SCRIPT if bench is not None else ''}</script>\n</body></html>\n")
    index.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(index, page)
    return index


def _json_for_html(data: dict) -> str:
    """JSON that cannot close its ``<script>`` element (``<``, ``>`` and ``&`` as unicode escapes)."""
    text = json.dumps({k: data.get(k) for k in ("benchmark", "metrics", "uncertainty", "significance")})
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
