"""The HTML gallery in a real headless Chromium: loads offline without console errors, every image loads, the tables
sort, the filters hide rows, the full-size view opens, and user text is never parsed as HTML."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import shifted_cases, write_bench
from tvbench.cases import load_benchmark
from tvbench.methods import create_method
from tvbench.runner import run_method
from tvbench.scoring import ScoringConfig, score_results
from tvbench.testing.browser import HeadlessChromium, find_chromium

CHROMIUM = find_chromium()
XSS_INSTRUCTION = '<img src=x onerror="window.__xss=1">Move it'
XSS_CAPTION = "</script><script>window.__xss=2</script> a caption & more"
XSS_METHOD = "<b onmouseover=x>bold"


def _score_and_render(results: Path) -> Path:
    """Score ``results`` with the smoke networks and render its gallery through the CLI; the page's path."""
    score_results(results, ScoringConfig(metrics=["ds_global_tgt", "lpips_tgt"], smoke=True, resolution=64,
                                         device="cpu", feature_cache=None, bootstrap=200), progress=False)
    done = subprocess.run([sys.executable, "-m", "tvbench", "report", str(results), "--format", "html"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return results / "gallery" / "index.html"


@pytest.fixture(scope="module")
def gallery(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gallery")
    records, images = shifted_cases(4)
    records[0]["instruction"] = XSS_INSTRUCTION
    records[3]["caption"] = XSS_CAPTION
    for record in records[1:3]:
        record.update(subtask="magnitude", group="g")
    bench = load_benchmark(write_bench(root / "bench", records, images))
    results = root / "results"
    for name in ("identity", "oracle"):
        run_method(create_method(name), bench, results, progress=False)
    shutil.copytree(results / "identity", results / XSS_METHOD)  # outside edits in a folder with markup in its name
    (results / XSS_METHOD / "manifest.json").unlink()
    (results / XSS_METHOD / "case-3.png").unlink()  # one edit missing
    return _score_and_render(results)


def test_the_gallery_is_self_contained_and_escapes_user_text(gallery):
    page = gallery.read_text()
    assert "http://" not in page and "https://" not in page  # no CDN, nothing fetched
    assert XSS_INSTRUCTION not in page and XSS_METHOD not in page and "<script>window.__xss" not in page
    assert "&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;Move it" in page
    assert page.count("<script") == 2  # the page's own: the summary's JSON and the script
    for link in ("img/c0/source.png", "img/c0/m0.thumb.jpg"):
        assert (gallery.parent / link).is_file()


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (Debian: apt-get install chromium; "
                                             ".ci/run installs it)")
def test_the_gallery_works_in_headless_chromium(gallery, tmp_path):
    pytest.importorskip("websockets", reason="the DevTools client needs websockets (the dev extra)")
    with HeadlessChromium(CHROMIUM, tmp_path) as browser:
        browser.navigate(gallery.as_uri())
        assert browser.evaluate("document.title").startswith("tvbench gallery")
        # every image loaded (4 cases x (source, target, identity, oracle, the outside edits) - 1 missing edit)
        images = browser.evaluate("Array.from(document.images).filter(i => i.getAttribute('src'))"
                                  ".map(i => [i.complete, i.naturalWidth])")
        assert len(images) == 4 * 5 - 1 and all(complete and width > 0 for complete, width in images)
        # nothing the user wrote ran or became markup
        assert browser.evaluate("window.__xss === undefined && "
                                "document.querySelectorAll('img[src=\"x\"], b[onmouseover]').length === 0")
        text = browser.evaluate("document.body.innerText")
        assert XSS_INSTRUCTION in text and XSS_CAPTION in text and XSS_METHOD in text

        def values(metric: str, method: str) -> list:
            return browser.evaluate(
                "Array.from(document.querySelectorAll('#cases tr.case-row')).filter(r => !r.classList.contains("
                "'hidden')).map(r => { const td = Array.from(r.querySelectorAll('td.edit')).find(t => "
                f"t.dataset.method === {json.dumps(method)}); const li = td && Array.from(td.querySelectorAll('li'))"
                f".find(l => l.dataset.metric === {json.dumps(metric)}); return li ? parseFloat(li.dataset.value)"
                " : null; })")

        def choose(element: str, value: str) -> None:
            browser.evaluate(f"(e => {{ e.value = {json.dumps(value)}; e.dispatchEvent(new Event('change')); }})"
                             f"(document.getElementById({json.dumps(element)}))")

        # sort the cases by a metric of a method, best first, then worst first
        choose("sort-method", "identity")
        choose("sort-metric", "lpips_tgt")  # lower is better
        best_first = values("lpips_tgt", "identity")
        assert best_first == sorted(best_first) and len(set(best_first)) > 1
        choose("sort-direction", "worst")
        assert values("lpips_tgt", "identity") == sorted(best_first, reverse=True)
        # the leaderboard sorts by a clicked column
        browser.evaluate("document.querySelectorAll('table.leaderboard thead th')[2].click()")
        column = browser.evaluate("Array.from(document.querySelectorAll('table.leaderboard tbody tr'))"
                                  ".map(r => r.children[2].dataset.value).map(parseFloat)")
        assert column == sorted(column)
        # filters hide rows and columns
        choose("filter-subtask", "magnitude")
        visible = browser.evaluate("Array.from(document.querySelectorAll('#cases tr.case-row'))"
                                   ".filter(r => getComputedStyle(r).display !== 'none').length")
        assert visible == 2 and browser.evaluate("document.getElementById('shown').textContent") == "2 of 4 cases"
        choose("filter-subtask", "")
        browser.evaluate("(b => { b.checked = false; b.dispatchEvent(new Event('change')); })"
                         "(document.querySelector('.show-method[value=\"oracle\"]'))")
        assert browser.evaluate("Array.from(document.querySelectorAll('td.edit[data-method=\"oracle\"]'))"
                                ".every(td => getComputedStyle(td).display === 'none')")
        # click a thumbnail: the full-size image opens over the page
        browser.evaluate("document.querySelector('#cases a.zoom').click()")
        assert browser.evaluate("new Promise(done => { const img = document.querySelector('#lightbox img'); "
                                "const check = () => img.complete && img.naturalWidth ? done([getComputedStyle("
                                "document.getElementById('lightbox')).display, img.naturalWidth]) : "
                                "setTimeout(check, 20); check(); })") == ["flex", 96]
        browser.evaluate("document.getElementById('lightbox').click()")
        assert browser.evaluate("document.getElementById('lightbox').hidden")
        assert browser.errors() == []
        shot = browser.screenshot(tmp_path / "gallery.png")
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("TVBENCH_SCREENSHOT_DIR")
    if keep:  # for the record
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "gallery.png")


# -- issue 19 item 9: metric labels with real scripts, method headers with what differs from the defaults ----------

@pytest.fixture(scope="module")
def options_gallery(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("options-gallery")
    records, images = shifted_cases(2)
    bench = load_benchmark(write_bench(root / "bench", records, images))
    results = root / "results"
    run_method(create_method("tps-warp", {"anchor_spacing": "24"}), bench, results, progress=False)
    run_method(create_method("identity"), bench, results, progress=False)
    shutil.copytree(results / "tps-warp", results / "gone-plugin")  # a method this machine cannot load
    manifest = json.loads((results / "gone-plugin" / "manifest.json").read_text())
    manifest["config"]["method"] = "not-installed-here"
    (results / "gone-plugin" / "manifest.json").write_text(json.dumps(manifest))
    return _score_and_render(results)


def _header(page: str, method: str) -> str:
    start = page.index(f'<th data-method="{method}">')
    return page[start:page.index("</th>", start)]


def test_metric_labels_have_real_scripts_and_headers_show_only_changed_options(options_gallery):
    page = options_gallery.read_text()
    assert "DS<sub>global</sub><sup>tgt</sup>" in page and "LPIPS<sup>tgt</sup>" in page
    assert "DS_global^tgt ↑" not in page  # the leaderboard's header (the metric menus are plain text: their label)
    tps = _header(page, "tps-warp")
    shown = tps.split('">')[-1]  # the text after the hover attribute
    assert shown.startswith("anchor_spacing=24.0") and "clearance" not in shown  # only what differs
    assert 'title="anchor_spacing=24.0, clearance=12.0, order=1, radius=0.0, use_mask=True"' in tps  # all on hover
    assert ">default options</small>" not in tps
    gone = _header(page, "gone-plugin")  # defaults unknown: every option, as before
    assert "clearance=12.0" in gone.split('">')[-1]


def test_html_label_escapes_around_the_scripts():
    from tvbench.report.render import html_label

    assert html_label("DS_global^tgt") == "DS<sub>global</sub><sup>tgt</sup>"
    assert html_label("PF_drag") == "PF<sub>drag</sub>" and html_label("Mag. ρ") == "Mag. ρ"
    assert html_label("<b>_<i>&") == "&lt;b&gt;<sub>&lt;i&gt;&amp;</sub>"
    assert html_label("_x ^") == "_x ^"


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine")
def test_scripts_and_option_hover_in_chromium(options_gallery, tmp_path):
    pytest.importorskip("websockets", reason="the DevTools client needs websockets (the dev extra)")
    with HeadlessChromium(CHROMIUM, tmp_path) as browser:
        browser.navigate(options_gallery.as_uri())
        heads = browser.evaluate("Array.from(document.querySelectorAll('table.leaderboard thead th'))"
                                 ".map(th => [th.innerText, th.querySelectorAll('sub, sup').length])")
        assert any(text.startswith("DS") and "global" in text and "_" not in text and scripts == 2
                   for text, scripts in heads), heads
        small = browser.evaluate("(s => [s.innerText, s.title])(document.querySelector("
                                 "'th[data-method=\"tps-warp\"] small.options'))")
        assert small[0] == "anchor_spacing=24.0" and "clearance=12.0" in small[1]
        assert browser.errors() == []


def test_options_shown_against_the_registered_defaults():
    from tvbench.report.gallery import _options

    defaults = {"anchor_spacing": 32.0, "clearance": 12.0, "order": 1, "radius": 0.0, "use_mask": True}
    assert _options({"config": {"method": "tps-warp", "options": defaults}}) == \
        ("default options", "anchor_spacing=32.0, clearance=12.0, order=1, radius=0.0, use_mask=True")
    tvedit = {"model": "Qwen/Qwen-Image-Edit", "controller": "org/ctl", "resize": "squash", "steps": 30}
    assert _options({"config": {"method": "tvedit-qwen", "options": tvedit}})[0] == "controller=org/ctl, steps=30"
    assert _options({"config": {"method": "nowhere", "options": {"a": 1}}}) == ("a=1", "a=1")
    assert _options(None) == ("", "")
