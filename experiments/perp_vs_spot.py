"""Does the account model change which genome wins? Spot fitness against perp fitness for the same population.

On a synthetic Hyperliquid-like market (genetic_sizer.data.synthetic.perp_market: six coins, 180 days of hourly candles,
hourly funding that runs at tens of percent a year, hotter on the alts, chasing each coin's trailing week and
flipping sign after sell-offs), one population of genomes sampled from the genome space is scored twice with the
same Sharpe objective, daily rebalancing and 4.5 bp fees:

* spot: the cash account (vectorbt semantics), no funding;
* perp: the perpetuals account the sizer trades, at leverage 1 and 3, with the funding charged and liquidation at
  the maintenance margin of Hyperliquid-like maximum leverage (BTC 40, ETH 25, SOL 20, others 10).

It prints the rank correlation of the two fitness orders, the overlap of their top 10, where spot's best genomes
rank in the perp account, and what funding they pay. Then (unless --no-evolve) it evolves a champion in each
account with the same seed and scores both champions in the perp account.

Finally it repeats the population comparison over ``--seeds`` markets and prints one line per market and account.

Run: ``.venv/bin/python experiments/perp_vs_spot.py [--genomes 2000] [--seed 0] [--seeds 5] [--no-evolve]``.
"""

from __future__ import annotations

import argparse

import numpy as np


def _ranks(x: np.ndarray) -> np.ndarray:
    """Rank 0 = best (largest)."""
    order = np.argsort(-x, kind="stable")
    r = np.empty(len(x), dtype=np.int64)
    r[order] = np.arange(len(x))
    return r


def compare(prices, population, label: str, leverage: float, max_leverage: dict, top: int = 10) -> dict:
    from scipy.stats import kendalltau, spearmanr

    from genetic_sizer.evolution.evaluator import Evaluator

    spot = Evaluator(prices, ("sharpe",), rebalance="D", fees=0.00045)
    perp = Evaluator(
        prices, ("sharpe",), rebalance="D", fees=0.00045, market="perp", leverage=leverage, max_leverage=max_leverage
    )
    ms, mp = spot.metrics(population), perp.metrics(population)
    fs, fp = spot(population)[:, 0], perp(population)[:, 0]  # fitness: liquidated / wiped out are the worst
    rs, rp = _ranks(fs), _ranks(fp)
    best_spot = np.argsort(rs)[:top]
    best_perp = np.argsort(rp)[:top]
    equity = np.mean(perp.backtest(population).value, axis=0)  # mean equity over the run, per genome
    years = prices.n_bars / prices.periods_per_year
    net_funding = (mp["funding_paid"] - mp["funding_received"]) / (equity * years)  # a year, of the mean equity
    out = {
        "label": label,
        "spearman": float(spearmanr(fs, fp).statistic),
        "kendall": float(kendalltau(fs, fp).statistic),
        "top_overlap": len(set(best_spot) & set(best_perp)),
        "spot_best_rank_in_perp": int(rp[best_spot[0]]),
        "spot_top_ranks_in_perp": sorted(int(rp[g]) for g in best_spot),
        "liquidated": int(mp["liquidated"].sum()),
        "spot_best": int(best_spot[0]),
        "perp_best": int(best_perp[0]),
        "sharpe_spot_of_spot_best": float(ms["sharpe"][best_spot[0]]),
        "sharpe_perp_of_spot_best": float(mp["sharpe"][best_spot[0]]),
        "sharpe_perp_of_perp_best": float(mp["sharpe"][best_perp[0]]),
        "funding_year_spot_top": float(np.mean(net_funding[best_spot])),
        "funding_year_perp_top": float(np.mean(net_funding[best_perp])),
    }
    return out


def _print(r: dict, symbols, population) -> None:
    print(f"\n== {r['label']}")
    print(
        f"rank correlation of spot and perp Sharpe over the population: Spearman {r['spearman']:.3f}, "
        f"Kendall {r['kendall']:.3f}; top-10 overlap {r['top_overlap']}/10; liquidated in perp: {r['liquidated']}"
    )
    print(
        f"spot's best genome ranks {r['spot_best_rank_in_perp']} in perp (0 = best); spot's top 10 rank "
        f"{r['spot_top_ranks_in_perp']} there"
    )
    print(
        f"Sharpe of spot's best: {r['sharpe_spot_of_spot_best']:.3f} spot, {r['sharpe_perp_of_spot_best']:.3f} perp; "
        f"perp's best: {r['sharpe_perp_of_perp_best']:.3f} perp"
    )
    print(
        f"net funding paid a year (fraction of mean equity): spot's top 10 {r['funding_year_spot_top']:+.2%}, "
        f"perp's top 10 {r['funding_year_perp_top']:+.2%}"
    )
    for name, g in (("spot best", r["spot_best"]), ("perp best", r["perp_best"])):
        w = population[g]
        print(f"  {name:<10}" + "  ".join(f"{s} {x:+.3f}" for s, x in zip(symbols, w, strict=True) if abs(x) >= 5e-3))


def evolve_both(prices, leverage: float, max_leverage: dict, direction: str, seed: int) -> None:
    """Evolve in each account with the same seed; score both champions in the perp account."""
    import tempfile

    from genetic_sizer.config import load_config
    from genetic_sizer.evolution.evaluator import Evaluator
    from genetic_sizer.runs.evolve import evolve

    common = [
        "portfolio.rebalance=D",
        "portfolio.fees=0.00045",
        f"portfolio.direction={direction}",
        "evolution.population=60",
        "evolution.generations=30",
        f"evolution.seed={seed}",
        "evolution.holdout=0",
    ]
    if direction == "longshort":
        common += ["portfolio.min_weight=-0.5", "portfolio.max_weight=0.6"]
    perp_cfg = [
        "portfolio.market=perp",
        f"portfolio.leverage={leverage}",
        "portfolio.max_leverage={BTC: 40, ETH: 25, SOL: 20, default: 10}",
    ]
    champions = {}
    for name, extra in (("spot", []), ("perp", perp_cfg)):
        cfg = load_config(None, [*common, *extra])
        with tempfile.TemporaryDirectory() as tmp:
            champions[name] = evolve(cfg, prices, tmp).champion
    perp = Evaluator(
        prices, ("sharpe",), rebalance="D", fees=0.00045, market="perp", leverage=leverage, max_leverage=max_leverage
    )
    m = perp.metrics(np.stack([champions["spot"], champions["perp"]]))
    years = prices.n_bars / prices.periods_per_year
    print(f"\n== evolved champions ({direction}, population 60 x 30 generations), scored in perp at {leverage:g}x")
    for i, name in enumerate(("spot", "perp")):
        net = (m["funding_paid"][i] - m["funding_received"][i]) / 10_000.0 / years
        w = champions[name]
        held = "  ".join(f"{s} {x:+.3f}" for s, x in zip(prices.symbols, w, strict=True) if abs(x) >= 5e-3)
        print(
            f"  {name}-evolved: perp Sharpe {m['sharpe'][i]:.3f}, CAGR {m['cagr'][i]:+.1%}, max DD "
            f"{m['max_drawdown'][i]:.1%}, net funding {net:+.1%} of initial equity a year"
            f"{', LIQUIDATED' if m['liquidated'][i] else ''}; {held}"
        )


def main(argv=None) -> int:
    from genetic_sizer.data.synthetic import perp_market
    from genetic_sizer.evolution.space import GenomeSpace

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genomes", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=5, help="markets in the closing summary")
    ap.add_argument("--no-evolve", action="store_true")
    args = ap.parse_args(argv)
    market = perp_market(("BTC", "ETH", "SOL", "DOGE", "AVAX", "LINK"), hours=24 * 180, seed=args.seed)
    prices = market.prices
    f = prices.funding[1:] * 8760
    print(
        f"synthetic market, seed {args.seed}: {prices.n_assets} coins x {prices.n_bars} hourly bars; funding a year "
        "(mean, share of hours negative): "
        + ", ".join(
            f"{s} {m:+.0%} ({n:.0%})" for s, m, n in zip(prices.symbols, f.mean(0), (f < 0).mean(0), strict=True)
        )
    )
    print(
        "buy and hold: "
        + ", ".join(
            f"{s} {r:+.0%}" for s, r in zip(prices.symbols, prices.close[-1] / prices.close[0] - 1, strict=True)
        )
    )
    max_lev = {"BTC": 40, "ETH": 25, "SOL": 20, "default": 10}
    rng = np.random.default_rng(args.seed)
    from genetic_sizer.config import PortfolioConfig

    for direction, extra in (("longonly", {}), ("longshort", {"min_weight": -0.5, "max_weight": 0.6})):
        space = GenomeSpace.from_config(prices.symbols, PortfolioConfig(direction=direction, **extra))
        population = space.sample(rng, args.genomes)
        for lev in (1.0, 3.0):
            r = compare(prices, population, f"{direction}, {args.genomes} genomes, perp at {lev:g}x", lev, max_lev)
            _print(r, prices.symbols, population)
    if not args.no_evolve:
        for direction in ("longonly", "longshort"):
            evolve_both(prices, 3.0, max_lev, direction, args.seed)
    print(f"\n== {args.seeds} markets, {args.genomes} genomes each, perp at 3x")
    print(
        f"{'seed':>4} {'direction':<10}{'Spearman':>9}{'Kendall':>8}{'top10':>6}{'spot#1 in perp':>15}"
        f"{'funding/yr spot top10':>22}{'perp top10':>11}{'liquidated':>11}"
    )
    for seed in range(args.seed, args.seed + args.seeds):
        p = perp_market(("BTC", "ETH", "SOL", "DOGE", "AVAX", "LINK"), hours=24 * 180, seed=seed).prices
        rng = np.random.default_rng(seed)
        for direction, extra in (("longonly", {}), ("longshort", {"min_weight": -0.5, "max_weight": 0.6})):
            space = GenomeSpace.from_config(p.symbols, PortfolioConfig(direction=direction, **extra))
            r = compare(p, space.sample(rng, args.genomes), direction, 3.0, max_lev)
            print(
                f"{seed:>4} {direction:<10}{r['spearman']:>9.3f}{r['kendall']:>8.3f}{r['top_overlap']:>5}/10"
                f"{r['spot_best_rank_in_perp']:>15}{r['funding_year_spot_top']:>22.1%}{r['funding_year_perp_top']:>11.1%}"
                f"{r['liquidated']:>11}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
