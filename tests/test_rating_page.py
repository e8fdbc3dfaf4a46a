"""The rating page (issue 23, item 5): blind, shuffled grading of PF and CP whose CSV `tvbench judge agreement` reads."""

from __future__ import annotations

import json
import time

import pytest

from conftest import run_tvbench, shifted_cases, write_bench
from tvbench.cases import load_benchmark
from tvbench.judge.agreement import read_ratings
from tvbench.judge.testing import FakeJudgeServer
from tvbench.methods import create_method
from tvbench.report.rating import RATE_PAGE, ratings_csv, rubric
from tvbench.runner import run_method
from tvbench.testing.browser import HeadlessChromium, find_chromium

CHROMIUM = find_chromium()
METHODS = ("identity", "oracle")


@pytest.fixture(scope="module")
def rated(tmp_path_factory):
    root = tmp_path_factory.mktemp("rating")
    records, images = shifted_cases()
    bench = load_benchmark(write_bench(root / "bench", records, images))
    results = root / "results"
    for name in METHODS:
        run_method(create_method(name), bench, results, progress=False)
    with FakeJudgeServer() as server:
        done = run_tvbench("score", str(results), "--metrics", "pf,cp", "--judge-base-url", server.base_url,
                           "--judge-model", "judge-a", "--quiet", "--judge-concurrency", "1",
                           env={"OMP_NUM_THREADS": "1"})
        assert done.returncode == 0, done.stderr
    done = run_tvbench("report", str(results), "--format", "html", "--rate", "--rate-seed", "3")
    assert done.returncode == 0, done.stderr
    return results


def page_data(results) -> dict:
    text = (results / "gallery" / RATE_PAGE).read_text()
    start = text.index('id="tvbench-rating">') + len('id="tvbench-rating">')
    return json.loads(text[start:text.index("</script>", start)])


def test_the_page_hides_method_names_and_shuffles_with_a_seed(rated):
    text = (rated / "gallery" / RATE_PAGE).read_text()
    data = page_data(rated)
    assert sorted(data["methods"].values()) == sorted(METHODS)
    shown = text.replace(text[text.index('id="tvbench-rating">'):text.index("</script>", text.index(
        'id="tvbench-rating">'))], "")
    assert not any(f'"{name}"' in shown or f">{name}<" in shown for name in METHODS)
    assert "http://" not in text and "https://" not in text  # nothing from the network
    items = data["items"]
    assert len(items) == 3 * len(METHODS) and all(set(i["metrics"]) == {"pf", "cp"} for i in items)
    assert all(i["method"] in data["methods"] for i in items)
    assert all((rated / "gallery" / path).is_file() for i in items for path in i["images"])
    assert data["rubrics"]["pf"] == rubric("pf") and "4: all four points are right" in rubric("pf")
    order = [(i["case"], data["methods"][i["method"]]) for i in items]
    assert order != sorted(order) or order != sorted(order, key=lambda p: (p[1], p[0]))
    again = run_tvbench("report", str(rated), "--format", "html", "--rate", "--rate-seed", "3")
    assert again.returncode == 0 and page_data(rated)["items"] == items  # the seed fixes the order


def test_the_python_csv_writer_round_trips(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(ratings_csv([("case-0", "oracle", "pf", "ann, b", 4), ("case-0", "oracle", "cp", "ann, b", 3)]))
    ratings = read_ratings(path).ratings
    assert [(r.case, r.method, r.metric, r.rater, r.grade) for r in ratings] == [
        ("case-0", "oracle", "pf", "ann, b", 4), ("case-0", "oracle", "cp", "ann, b", 3)]


def test_report_rate_needs_html(rated):
    done = run_tvbench("report", str(rated), "--rate")
    assert done.returncode != 0 and "--format html" in done.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium")
def test_grading_in_headless_chromium_saves_a_csv_that_agreement_reads(rated, tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    data = page_data(rated)
    with HeadlessChromium(CHROMIUM, tmp_path) as browser:
        browser.navigate((rated / "gallery" / RATE_PAGE).as_uri())
        assert browser.evaluate("document.title").startswith("tvbench rating")
        assert browser.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        text = browser.evaluate("document.body.innerText")
        assert not any(name in text for name in METHODS)
        browser.send("Page.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))
        browser.evaluate("(e => { e.value = 'ann, b'; })(document.getElementById('rater'))")
        graded = {}
        for k, item in enumerate(data["items"][:4]):  # grade four items: pf on all, cp on two
            for kind in ("pf", "cp") if k % 2 == 0 else ("pf",):
                grade = (k + len(kind)) % 5
                browser.evaluate(f"document.querySelector('input[name=\"{item['id']}-{kind}\"][value=\"{grade}\"]')"
                                 ".click()")
                graded[(item["case"], data["methods"][item["method"]], kind)] = grade
        assert browser.evaluate("document.getElementById('count').textContent") == f"{len(graded)} graded"
        browser.evaluate("document.getElementById('save').click()")
        in_page = browser.evaluate("fetch(document.getElementById('download').href).then(r => r.text())")
        deadline = time.monotonic() + 20
        while not (downloads / "ratings.csv").is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert browser.errors() == []
    saved = downloads / "ratings.csv"
    assert saved.is_file() and saved.read_text() == in_page
    ratings = read_ratings(saved).ratings
    assert {(r.case, r.method, r.metric): r.grade for r in ratings} == graded
    assert {r.rater for r in ratings} == {"ann, b"}
    done = run_tvbench("judge", "agreement", str(saved), "--results", str(rated))
    assert done.returncode == 0, done.stderr
