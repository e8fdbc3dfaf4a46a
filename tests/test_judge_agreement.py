"""Agreement of the judge with people (issue 23, item 4): the statistics against independent implementations (scipy
for the rank correlations, Krippendorff's worked example and a pair-by-pair computation for alpha), and
`tvbench judge agreement` on rating files made with a known agreement."""

from __future__ import annotations

import csv
import itertools
import json

import numpy as np
import pytest
from scipy import stats

from conftest import run_tvbench
from tvbench.cases import load_benchmark
from tvbench.judge import JudgeConfig
from tvbench.judge.agreement import (Settings, alpha_with_interval, correlations, kendall_tau_b, krippendorff_alpha,
                                     spearman)
from tvbench.judge.testing import FakeJudgeServer
from tvbench.methods import create_method
from tvbench.runner import run_method
from tvbench.scoring import ScoringConfig, score_results

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers, 12 units, values 1-5,
# missing values. The paper computes alpha_nominal = 0.743, alpha_ordinal = 0.815, alpha_interval = 0.849.
KRIPPENDORFF_2011 = [[1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
                     [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
                     [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
                     [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN]]


def pairwise_alpha(data, level: str) -> float:
    """Krippendorff's alpha from its definition, pair by pair: 1 - D_o / D_e, where D_o averages the distance over
    the ordered pairs of values within a unit (each unit's pairs weighted 1 / (m_u - 1)) and D_e over all ordered
    pairs of pairable values; the ordinal distance from the values' frequencies (Krippendorff 2011, eq. for
    ordinal metric differences)."""
    units = [[v for v in column if not np.isnan(v)] for column in np.asarray(data, dtype=float).T]
    units = [u for u in units if len(u) >= 2]
    values = [v for u in units for v in u]
    n = len(values)
    freq = {v: values.count(v) for v in set(values)}

    def delta(c, k):
        if level == "nominal":
            return float(c != k)
        if level == "interval":
            return (c - k) ** 2
        lo, hi = min(c, k), max(c, k)
        return (sum(f for g, f in freq.items() if lo <= g <= hi) - (freq[c] + freq[k]) / 2) ** 2

    observed = sum(delta(a, b) / (len(u) - 1) for u in units for a, b in itertools.permutations(u, 2)) / n
    expected = sum(delta(a, b) for a, b in itertools.permutations(values, 2)) / (n * (n - 1))
    return 1 - observed / expected


def test_krippendorff_alpha_matches_the_worked_example_of_krippendorff_2011():
    assert round(krippendorff_alpha(KRIPPENDORFF_2011, "nominal"), 3) == 0.743
    assert round(krippendorff_alpha(KRIPPENDORFF_2011, "ordinal"), 3) == 0.815
    assert round(krippendorff_alpha(KRIPPENDORFF_2011, "interval"), 3) == 0.849
    for level in ("nominal", "ordinal", "interval"):
        assert krippendorff_alpha(KRIPPENDORFF_2011, level) == pytest.approx(pairwise_alpha(KRIPPENDORFF_2011, level))


def test_krippendorff_alpha_against_the_pairwise_definition_on_random_ratings():
    rng = np.random.default_rng(1)
    for trial in range(20):
        truth = rng.integers(0, 5, 25)
        data = np.clip(truth[None, :] + rng.integers(-1, 2, (3, 25)), 0, 4).astype(float)
        data[rng.random(data.shape) < 0.2] = np.nan  # some ratings missing
        for level in ("nominal", "ordinal", "interval"):
            assert krippendorff_alpha(data, level) == pytest.approx(pairwise_alpha(data, level)), (trial, level)
    assert krippendorff_alpha([[1, 2, 3], [1, 2, 3]]) == 1.0  # perfect agreement
    assert krippendorff_alpha([[2, 2, 2], [2, 2, 2]]) is None  # no variation: undefined
    assert krippendorff_alpha([[1, NAN], [NAN, 2]]) is None  # no unit with two values


def test_spearman_and_kendall_tau_b_match_scipy_with_ties():
    rng = np.random.default_rng(0)
    for trial in range(40):
        n = int(rng.integers(3, 60))
        x = rng.integers(0, 5, n)  # the judge's grades: heavy ties
        y = np.clip(x + rng.integers(-2, 3, n), 0, 4) + rng.integers(0, 3, n) / 2  # people's means, in halves
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12), trial
        assert kendall_tau_b(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12), trial
    with pytest.warns(stats.ConstantInputWarning):  # scipy: nan; here: None (undefined)
        assert spearman([1, 1, 1], [0, 1, 2]) is None and np.isnan(stats.spearmanr([1, 1, 1], [0, 1, 2]).statistic)
    assert kendall_tau_b([0, 1, 2], [3, 3, 3]) is None
    assert spearman([0, 1, 2, 3], [3, 2, 1, 0]) == -1.0 and kendall_tau_b([0, 1, 2, 3], [0, 1, 2, 3]) == 1.0


def test_bootstrap_intervals_equal_a_direct_bootstrap_of_the_items():
    """Percentile intervals: the same draws of items, each replicate's statistic computed by scipy (correlations) or
    from the resampled units' columns (alpha), give the same interval."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 5, 30)
    y = np.clip(x + rng.integers(-1, 2, 30), 0, 4)
    settings = Settings(resamples=300, method="percentile", seed=7)
    got = correlations(x, y, settings)
    draws = np.random.default_rng(7).integers(0, 30, size=(300, 30))
    for name, function in (("spearman", stats.spearmanr), ("kendall_tau_b", stats.kendalltau)):
        direct = np.array([function(x[i], y[i]).statistic for i in draws])
        low, high = np.quantile(direct[np.isfinite(direct)], [0.025, 0.975])
        interval = got[name]["interval"]
        assert (interval["low"], interval["high"]) == pytest.approx((low, high), abs=1e-12), name
        assert interval["units"] == 30 and interval["method"] == "percentile"
    data = np.clip(x[None, :] + rng.integers(-1, 2, (3, 30)), 0, 4).astype(float)
    alpha = alpha_with_interval(data, "ordinal", settings)
    direct = np.array([krippendorff_alpha(data[:, i], "ordinal") for i in draws])
    assert (alpha["interval"]["low"], alpha["interval"]["high"]) == pytest.approx(
        tuple(np.quantile(direct, [0.025, 0.975])), abs=1e-12)
    bca = correlations(x, y, Settings(resamples=1000))["spearman"]["interval"]
    assert bca["method"] == "bca" and bca["low"] < spearman(x, y) < bca["high"]
    assert correlations(x[:9], y[:9])["spearman"]["interval"] is None  # below 10 items: no interval


# --- the command ----------------------------------------------------------------------------------------------------

def write_scores(results, grades: dict[tuple[str, str, str], list[int]], failed=()):
    """scores.jsonl rows as the judge phase writes them (tvbench/judge/phase.py)."""
    results.mkdir(parents=True, exist_ok=True)
    rows = [{"case": case, "method": method, "metric": metric, "value": sum(g) / len(g) / 4, "status": "ok",
             "detail": None, "key": "k", "judge": {"prompt_id": f"{metric}-v1", "scores": g, "repeats": []}}
            for (case, method, metric), g in grades.items()]
    rows += [{"case": case, "method": method, "metric": metric, "value": None, "status": "error", "detail": "HTTP 500",
              "key": "k", "judge": {"scores": [None], "repeats": []}} for case, method, metric in failed]
    (results / "scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def write_ratings(path, rows, header=("case", "method", "metric", "rater", "grade")):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def agreement_json(ratings, results, *extra):
    done = run_tvbench("judge", "agreement", str(ratings), "--results", str(results), "--format", "json", *extra,
                       env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    return {m["metric"]: m for m in json.loads(done.stdout)["metrics"]}


def test_a_rating_file_with_known_agreement_gives_the_right_statistics(tmp_path):
    items = [(f"case-{k}", f"m{j}") for k in range(5) for j in range(4)]  # 20 items per metric
    judge = {item: k % 5 for k, item in enumerate(items)}  # grades 0..4, four items each
    grades = {(c, m, metric): [judge[(c, m)]] for c, m in items for metric in ("pf", "cp")}
    write_scores(tmp_path / "results", grades, failed=[("case-9", "m0", "pf")])
    noise = np.random.default_rng(5).integers(-1, 2, len(items))
    rows = []
    for (case, method), e in zip(items, noise):
        g = judge[(case, method)]
        rows += [(case, method, "PF", "ann", g),  # agrees exactly
                 (case, method, "pf", "bob", min(g + 1, 4)),  # one higher, except at the top
                 (case, method, "pf", "cy", int(np.clip(g + e, 0, 4))),  # noisy
                 (case, method, "cp", "ann", 4 - g)]  # the judge's CP runs against ann's
    rows += [("case-9", "m0", "pf", "ann", 2), ("case-0", "m0", "pf", "dee", "")]  # not judged; blank grade
    write_ratings(tmp_path / "ratings.csv", rows)
    got = agreement_json(tmp_path / "ratings.csv", tmp_path / "results", "--bootstrap", "500")
    pf, cp = got["pf"], got["cp"]
    assert (pf["items"], pf["ratings"], pf["raters"], pf["not_judged"]) == (20, 60, ["ann", "bob", "cy"], 1)
    g = np.array([judge[i] for i in items])
    bob, cy = np.minimum(g + 1, 4), np.clip(g + noise, 0, 4)
    people = (g + bob + cy) / 3
    assert pf["spearman"]["value"] == pytest.approx(stats.spearmanr(g, people).statistic)
    assert pf["kendall_tau_b"]["value"] == pytest.approx(stats.kendalltau(g, people).statistic)
    exact = np.mean([(1 + (b == j) + (c == j)) / 3 for j, b, c in zip(g, bob, cy)])
    assert pf["exact"]["value"] == pytest.approx(exact) and pf["within_one"]["value"] == 1.0
    assert pf["exact"]["interval"]["units"] == 20 and pf["exact"]["interval"]["low"] <= exact
    alpha = pf["krippendorff_alpha"]
    assert alpha["level"] == "ordinal" and alpha["items"] == 20  # case-9 was rated by one person only: not pairable
    reliability = np.full((3, 20), np.nan)
    reliability[0], reliability[1], reliability[2] = g, bob, cy
    assert alpha["value"] == pytest.approx(pairwise_alpha(np.c_[reliability, [2, NAN, NAN], [NAN] * 3], "ordinal"))
    assert alpha["interval"] is not None
    # CP: the judge gives 4 - ann's grade: perfect disagreement, equal only where both say 2
    assert cp["spearman"]["value"] == pytest.approx(-1.0) and cp["kendall_tau_b"]["value"] == pytest.approx(-1.0)
    assert cp["exact"]["value"] == pytest.approx(4 / 20) and cp["within_one"]["value"] == pytest.approx(4 / 20)
    assert cp["krippendorff_alpha"] is None  # one rater
    interval = agreement_json(tmp_path / "ratings.csv", tmp_path / "results", "--alpha-level", "interval",
                              "--bootstrap", "200")["pf"]["krippendorff_alpha"]
    assert interval["level"] == "interval" and interval["value"] == pytest.approx(
        pairwise_alpha(np.c_[reliability, [2, NAN, NAN], [NAN] * 3], "interval"))
    table = run_tvbench("judge", "agreement", str(tmp_path / "ratings.csv"), "--results", str(tmp_path / "results"),
                        "--bootstrap", "200")
    assert table.returncode == 0 and "| pf " in table.stdout and "α among raters (ordinal)" in table.stdout
    assert "1 rated item(s) have no ok judge grade" in table.stdout and "1 row(s) with a blank grade" in table.stdout


def test_grades_are_read_from_a_judged_results_folder(small_bench, tmp_path):
    bench = load_benchmark(small_bench)
    results = tmp_path / "results"
    for name in ("identity", "oracle"):
        run_method(create_method(name), bench, results, progress=False)
    with FakeJudgeServer() as server:
        config = JudgeConfig(base_url=server.base_url, model="judge-a", repeats=2, temperature=1.0)
        score_results(results, ScoringConfig(metrics=["pf"], judge=config), progress=False)
    rows = [json.loads(line) for line in (results / "scores.jsonl").read_text().splitlines()]
    ratings = [(r["case"], r["method"], "pf", "ann", r["judge"]["scores"][0]) for r in rows]
    write_ratings(tmp_path / "ratings.csv", ratings)
    pf = agreement_json(tmp_path / "ratings.csv", results)["pf"]
    expected = np.mean([np.mean(np.array(r["judge"]["scores"]) == r["judge"]["scores"][0]) for r in rows])
    assert pf["items"] == 6 and pf["exact"]["value"] == pytest.approx(expected)  # repeat 0 always agrees
    assert pf["exact"]["interval"] is None  # six items: too few for an interval


@pytest.mark.parametrize("rows, header, message", [
    ([("c", "m", "pf", "ann", "5")], None, "line 2: grade '5': expected an integer from 0 to 4"),
    ([("c", "m", "pf", "ann", "2.5")], None, "line 2: grade '2.5'"),
    ([("c", "m", "pf", "ann", "2"), ("c", "m", "pf", "ann", "3")], None,
     "line 3: rater 'ann' already graded pf of m on case 'c' (line 2)"),
    ([("c", "m", "pf", "2")], ("case", "method", "metric", "grade"), "missing column(s) rater"),
    ([("c", "m", "sharpness", "ann", "2")], None, "metric(s) sharpness have no judge rows"),
])
def test_a_malformed_rating_file_is_one_line(tmp_path, rows, header, message):
    write_scores(tmp_path / "results", {("c", "m", "pf"): [2]})
    write_ratings(tmp_path / "ratings.csv", rows, header or ("case", "method", "metric", "rater", "grade"))
    done = run_tvbench("judge", "agreement", str(tmp_path / "ratings.csv"), "--results", str(tmp_path / "results"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
