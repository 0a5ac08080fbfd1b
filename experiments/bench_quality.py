"""Search quality: how close does evolution get to the known optimum, against simpler searches?

Problem (issue 3): the embedded S&P 500 sample, 2015-2022, long-only, daily rebalancing, no fees, objective
Sharpe. The optimum is the convex maximum-Sharpe portfolio (skfolio ``MeanRisk(MAXIMIZE_RATIO)``), whose
simulated Sharpe is the 100% mark. For each seed and each budget (2,000 and 10,000 evaluations) it prints the
best Sharpe found as a fraction of the optimum by

* random search: the best of N random weight vectors, drawn as in vectorbt's portfolio optimization example
  (``np.random.random_sample(n)`` normalized to sum 1);
* plain eaSimple: DEAP ``algorithms.eaSimple`` with ``cxBlend`` and ``mutGaussian`` on unconstrained genes
  mapped to weights by ``|g| / sum|g|`` (the textbook set-up);
* genetic_sizer: :func:`genetic_sizer.runs.evolve.evolve` with its defaults except ``population: 30``, unseeded.

"Within N evaluations" is the best of the first N genomes evaluated (every evaluation is counted, in order).
Targets: median over 5 seeds >= 99% at 2,000 and >= 99.9% at 10,000, and genetic_sizer above random search on
every seed at equal budget.

Run: ``make bench`` or ``.venv/bin/python experiments/bench_quality.py [--seeds 5]``.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time

import numpy as np

from genetic_sizer.config import load_config
from genetic_sizer.data.loaders import load_default
from genetic_sizer.evolution.evaluator import Evaluator
from genetic_sizer.runs.evolve import evolve

BUDGETS = (2_000, 10_000)
WINDOW = ("2015-01-01", "2022-12-31")


def optimum(prices, evaluator) -> tuple[float, np.ndarray]:
    from skfolio.optimization import MeanRisk, ObjectiveFunction
    from skfolio.preprocessing import prices_to_returns

    model = MeanRisk(objective_function=ObjectiveFunction.MAXIMIZE_RATIO).fit(prices_to_returns(prices.to_frame()))
    w = np.where(np.abs(model.weights_) < 1e-12, 0.0, model.weights_)
    return float(evaluator(w[None])[0, 0]), w


def best_within(history: list[float], budgets) -> list[float]:
    h = np.asarray(history)
    return [float(h[:b].max()) for b in budgets]


def random_search(evaluator, n_assets: int, seed: int, budgets) -> list[float]:
    rng = np.random.default_rng(seed)
    w = rng.random((max(budgets), n_assets))
    w /= w.sum(axis=1, keepdims=True)
    history = np.concatenate([evaluator(w[i : i + 2000])[:, 0] for i in range(0, len(w), 2000)])
    return best_within(list(history), budgets)


def plain_easimple(evaluator, n_assets: int, seed: int, budgets) -> list[float]:
    from deap import algorithms, base, creator, tools

    if not hasattr(creator, "BenchFitness"):
        creator.create("BenchFitness", base.Fitness, weights=(1.0,))
        creator.create("BenchIndividual", list, fitness=creator.BenchFitness)
    history: list[float] = []

    def batch_map(fn, individuals):
        inds = list(individuals)
        if not inds:
            return []
        g = np.abs(np.array(inds, dtype=float)) + 1e-12
        values = evaluator(g / g.sum(axis=1, keepdims=True))[:, 0]
        history.extend(values.tolist())
        return [(float(v),) for v in values]

    random.seed(seed)
    tb = base.Toolbox()
    tb.register("attr", random.random)
    tb.register("individual", tools.initRepeat, creator.BenchIndividual, tb.attr, n_assets)
    tb.register("population", tools.initRepeat, list, tb.individual)
    tb.register("evaluate", lambda ind: None)  # evaluation happens in batch_map
    tb.register("map", batch_map)
    tb.register("mate", tools.cxBlend, alpha=0.5)
    tb.register("mutate", tools.mutGaussian, mu=0.0, sigma=0.1, indpb=0.2)
    tb.register("select", tools.selTournament, tournsize=3)
    pop = tb.population(n=50)
    while len(history) < max(budgets):
        pop, _ = algorithms.eaSimple(pop, tb, cxpb=0.7, mutpb=0.3, ngen=1, verbose=False)
    return best_within(history, budgets)


def genetic_sizer_run(evaluator, prices, seed: int, budgets) -> list[float]:
    history: list[float] = []

    def counting_map(fn, batches):
        out = [fn(b) for b in batches]
        for r in out:
            history.extend(np.asarray(r)[:, 0].tolist())
        return out

    config = load_config(
        None,
        [
            f"data.start={WINDOW[0]}",
            f"data.end={WINDOW[1]}",
            "portfolio.rebalance=D",
            "portfolio.fees=0",
            "evolution.population=30",
            "evolution.generations=1000",
            f"evolution.seed={seed}",
        ],
    )
    stop = max(budgets)

    class Enough(Exception):
        pass

    def on_generation(g):
        if len(history) >= stop:
            raise Enough

    with tempfile.TemporaryDirectory() as tmp:
        try:
            evolve(config, prices, tmp, map_fn=counting_map, on_generation=on_generation)
        except Enough:
            pass
    return best_within(history, budgets)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args(argv)

    prices = load_default(start=WINDOW[0], end=WINDOW[1])
    evaluator = Evaluator(prices, ["sharpe"], rebalance="D", fees=0.0)
    best, w_opt = optimum(prices, evaluator)
    held = ", ".join(f"{s} {x:.3f}" for s, x in zip(prices.symbols, w_opt, strict=True) if x > 1e-4)
    print(
        f"data: {prices.n_assets} assets, {prices.n_bars} daily bars {WINDOW[0]}..{WINDOW[1]}; long-only, "
        "daily rebalancing, no fees, objective Sharpe"
    )
    print(f"optimum (skfolio max-Sharpe, simulated): Sharpe {best:.4f}  [{held}]")

    methods = {
        "random search": lambda s: random_search(evaluator, prices.n_assets, s, BUDGETS),
        "plain eaSimple (blend)": lambda s: plain_easimple(evaluator, prices.n_assets, s, BUDGETS),
        "genetic_sizer": lambda s: genetic_sizer_run(evaluator, prices, s, BUDGETS),
    }
    table = {}
    for name, fn in methods.items():
        t0 = time.perf_counter()
        table[name] = np.array([fn(seed) for seed in range(args.seeds)]) / best
        print(f"  ran {name} on {args.seeds} seeds in {time.perf_counter() - t0:.1f} s", flush=True)

    print()
    head = f"{'method':<24}" + "".join(
        f"{'median@' + format(b, ','):>15}{'min@' + format(b, ','):>13}" for b in BUDGETS
    )
    print(head)
    for name, r in table.items():
        cells = "".join(f"{np.median(r[:, j]):>14.3%} {r[:, j].min():>12.3%}" for j in range(len(BUDGETS)))
        print(f"{name:<24}{cells}")
    print()
    print("per seed (fraction of the optimum):")
    for name, r in table.items():
        print(f"  {name:<24}" + "  ".join("/".join(f"{x:.4f}" for x in row) for row in r))

    ours, rnd = table["genetic_sizer"], table["random search"]
    checks = {
        "median >= 99% within 2,000 evaluations": np.median(ours[:, 0]) >= 0.99,
        "median >= 99.9% within 10,000 evaluations": np.median(ours[:, 1]) >= 0.999,
        "beats random search on every seed and budget": bool((ours > rnd).all()),
    }
    print()
    for what, ok in checks.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {what}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
