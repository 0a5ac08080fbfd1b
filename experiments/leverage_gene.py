"""Does evolving the leverage beat choosing it? A leverage gene against fixed-leverage runs in the perp account.

On synthetic Hyperliquid-like markets (:func:`genetic_sizer.data.synthetic.perp_market`: six coins, hourly candles and
hourly funding at tens of percent a year that chases each coin's trailing week, differs by coin and flips sign after
sell-offs), the perp account of ``configs/perp_strategy.yaml`` (long/short -0.4..0.6, daily rebalancing plus an
evolved drift band in [0, 0.1], 4.5 bp taker fees, 1 bp slippage, funding charged, liquidation at the maintenance
margin of BTC 40x, ETH 25x, SOL 20x, others 10x; population 60 x 40 generations) is evolved

* with the leverage gene, ``evolution.genes.leverage: [1, 5]``;
* at a fixed leverage of 1, 2, 3 and 5 (``portfolio.leverage``; the drift band still evolved).

The best fixed leverage is chosen the honest way, by its in-sample objective. Two objectives: Calmar (the config's:
growth over drawdown, which prices the leverage) and Sharpe (which barely depends on it). Each market is 360 days;
two out-of-sample checks per market:

* ``holdout``: ``genetic-sizer evolve``'s split: evolve on the first 80 % (288 days), score the champion on the last
  72 days from ``init_cash`` (the held-out window, at the champion's leverage);
* ``walkforward``: 60-day train / 30-day test windows (10 folds), each fold's champion at its own leverage over its
  test window, stitched into ONE perp account (leverage per segment); in sample is the mean over the folds.

Run: ``.venv/bin/python experiments/leverage_gene.py [--seeds 5] [--seed 0] [--objectives calmar sharpe]
[--no-walkforward]`` (about 10 minutes on 2 cores for 5 markets and both objectives).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "perp_strategy.yaml"
COINS = ("BTC", "ETH", "SOL", "DOGE", "AVAX", "LINK")
FIXED = (1.0, 2.0, 3.0, 5.0)
SHOWN = ("sharpe", "calmar", "cagr", "max_drawdown", "liquidated")


def arms(objective: str) -> dict[str, list[str]]:
    """The runs compared: the leverage gene, and each fixed leverage (all with the drift band gene)."""
    base = [f"objective={objective}", "evolution.seed=42"]
    out = {"gene [1, 5]": [*base, "portfolio.leverage=2"]}
    for lev in FIXED:
        out[f"fixed {lev:g}x"] = [*base, f"portfolio.leverage={lev:g}", "evolution.genes={threshold: [0.0, 0.1]}"]
    return out


def _config(path, overrides):
    from genetic_sizer.config import load_config

    return load_config(CONFIG, [f"data.path={path}", *overrides])


def holdout_run(path, prices, overrides) -> dict:
    """evolve on the first 80 %, the champion scored in sample and on the held-out 20 % (at its own leverage)."""
    from genetic_sizer.evolution.evaluator import Evaluator
    from genetic_sizer.runs.evolve import evolve
    from genetic_sizer.validation.holdout import split_holdout

    cfg = _config(path, overrides)
    train, held = split_holdout(prices, cfg.evolution.holdout)
    with tempfile.TemporaryDirectory() as tmp:
        res = evolve(cfg, train, tmp)
    genes = None if res.genes is None else res.champion_genes[None]
    ins = Evaluator.from_config(train, cfg).metrics(res.champion[None], genes=genes)
    oos = Evaluator.from_config(held, cfg).metrics(res.champion[None], genes=genes)
    return {
        "leverage": res.strategy(0).get("leverage", cfg.portfolio.leverage),
        "is": {k: float(ins[k][0]) for k in SHOWN},
        "oos": {k: float(oos[k][0]) for k in SHOWN},
    }


def walkforward_run(path, prices, overrides) -> dict:
    """A walk-forward (60-day train, 30-day test): the stitched GA perp account and the mean in-sample figures."""
    from genetic_sizer.runs.rundir import RunDir
    from genetic_sizer.validation.walkforward import run_walkforward

    cfg = _config(path, [*overrides, "walkforward.train=1440", "walkforward.test=720"])
    with tempfile.TemporaryDirectory() as tmp:
        wf = run_walkforward(cfg, prices, RunDir.create(Path(tmp) / "run", cfg))
    levs = [r["strategy"]["GA"].get("leverage", cfg.portfolio.leverage) for r in wf.fold_results]
    ins = {k: float(np.mean([r["in_sample"]["GA"][k] for r in wf.fold_results])) for k in SHOWN}
    return {"leverage": levs, "is": ins, "oos": {k: float(wf.oos["GA"][k]) for k in SHOWN}, "folds": len(levs)}


def _line(name: str, r: dict, objective: str) -> str:
    lev = r["leverage"]
    lev_text = f"{lev:.2f}x" if np.ndim(lev) == 0 else f"{min(lev):.2f}-{max(lev):.2f}x (mean {np.mean(lev):.2f})"
    o, i = r["oos"], r["is"]
    return (
        f"  {name:<12} leverage {lev_text:<26} IS {objective} {i[objective]:>9.3f}  OOS {objective} "
        f"{o[objective]:>8.3f}  OOS Sharpe {o['sharpe']:>6.3f}  CAGR {o['cagr']:>+8.1%}  max DD "
        f"{o['max_drawdown']:>7.1%}{'  LIQUIDATED' if o['liquidated'] else ''}"
    )


def main(argv=None) -> int:
    from genetic_sizer.data.synthetic import perp_market

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5, help="markets")
    ap.add_argument("--seed", type=int, default=0, help="first market seed")
    ap.add_argument("--objectives", nargs="+", default=["calmar", "sharpe"])
    ap.add_argument("--no-walkforward", action="store_true")
    args = ap.parse_args(argv)
    kinds = ["holdout"] + ([] if args.no_walkforward else ["walkforward"])
    summary: dict = {}
    with tempfile.TemporaryDirectory() as data_dir:
        for seed in range(args.seed, args.seed + args.seeds):
            path, _ = perp_market(COINS, hours=24 * 360, seed=seed).write(Path(data_dir) / f"hl_{seed}.parquet")
            from genetic_sizer.data.loaders import load

            prices = load("hyperliquid", path)
            hold = prices.close[-1] / prices.close[0] - 1
            print(
                f"\n=== market seed {seed}: {prices.n_assets} coins x {prices.n_bars} hourly bars; buy and hold "
                + ", ".join(f"{s} {r:+.0%}" for s, r in zip(prices.symbols, hold, strict=True))
            )
            for objective in args.objectives:
                for kind in kinds:
                    run = holdout_run if kind == "holdout" else walkforward_run
                    results = {name: run(path, prices, o) for name, o in arms(objective).items()}
                    fixed = [n for n in results if n.startswith("fixed")]
                    best = max(fixed, key=lambda n: results[n]["is"][objective])  # chosen in sample
                    print(f" {objective}, {kind} (best fixed by in-sample {objective}: {best})")
                    for name, r in results.items():
                        print(_line(name, r, objective))
                    summary.setdefault((objective, kind), []).append((seed, results, best))
    print("\n=== summary: the leverage gene vs the best fixed leverage (chosen by in-sample objective)")
    for (objective, kind), rows in summary.items():
        gene_is = [r["gene [1, 5]"]["is"][objective] for _, r, _ in rows]
        best_is = [r[b]["is"][objective] for _, r, b in rows]
        gene_oos = [r["gene [1, 5]"]["oos"][objective] for _, r, _ in rows]
        best_oos = [r[b]["oos"][objective] for _, r, b in rows]
        gene_sh = [r["gene [1, 5]"]["oos"]["sharpe"] for _, r, _ in rows]
        best_sh = [r[b]["oos"]["sharpe"] for _, r, b in rows]
        wins = sum(g > b for g, b in zip(gene_oos, best_oos, strict=True))
        bests = ", ".join(b.replace("fixed ", "") for _, _, b in rows)
        levs = ", ".join(
            f"{np.mean(r['gene [1, 5]']['leverage']):.2f}" for _, r, _ in rows
        )  # the gene's (mean) leverage per market
        print(
            f" {objective:<7}{kind:<12} gene leverage {levs} | best fixed {bests} | IS {objective} gene / best: "
            f"{np.median(gene_is):.3f} / {np.median(best_is):.3f} (median) | OOS {objective} gene / best: "
            f"{np.median(gene_oos):.3f} / {np.median(best_oos):.3f} (median), gene ahead in {wins} of {len(rows)} | "
            f"OOS Sharpe {np.median(gene_sh):.3f} / {np.median(best_sh):.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
