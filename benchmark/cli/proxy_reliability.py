"""``benchmark proxy-reliability``: the DCD paper's Table 1 (see :mod:`benchmark.studies.proxy_reliability`).

    python -m benchmark proxy-reliability --protocol dcd48 [--out DIR] [--embedder minilm]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmark.cli.common import add_data_options, data_layer


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--protocol", default="dcd48",
                   help="a protocol name (`list protocols`) or a protocol TOML file")
    p.add_argument("--out", help="output directory (default results/<protocol>/proxy-reliability)")
    p.add_argument("--embedder", default="minilm", help="text embedder of the semantic proxy")
    p.add_argument("--beta", type=float, default=2.5, help="DCD's layer attention intensity")
    p.add_argument("--features-dir", help="feature pack directory (conductance)")
    add_data_options(p)


def run(args) -> int:
    import numpy as np
    from tabulate import tabulate

    from benchmark.core.protocol import get_protocol
    from benchmark.data.catalog import Catalog
    from benchmark.features.kinds import LoadContext, load_packs
    from benchmark.features.store import FeatureStore
    from benchmark.studies import proxy_reliability as pr
    from methods.dcd import conductance_values

    started = time.perf_counter()
    data = data_layer(args)
    protocol = get_protocol(args.protocol)
    pdata = protocol.load(data)
    datasets = list(protocol.datasets)
    catalog = Catalog(data)
    infos = [catalog.info(d) for d in datasets]
    accuracy = pdata.targets_gt.matrix.reindex(index=list(protocol.zoo), columns=datasets)

    ids, sem = pr.semantic_distances(infos, args.embedder)
    proxies = {"semantic": lambda m: (ids, sem)}
    store = FeatureStore(args.features_dir) if args.features_dir else FeatureStore()
    recs = load_packs("conductance", LoadContext(data, store), list(protocol.zoo), datasets)
    if recs:
        def dcd_proxy(m):
            prof = {d: conductance_values(recs[(m, d)]).mean(axis=0) for d in datasets
                    if (m, d) in recs}
            return pr.dcd_distances(prof, args.beta) if len(prof) >= 3 else None
        proxies["dcd"] = dcd_proxy
    else:
        print(f"dcd proxy: no conductance packs for {protocol.name} (python -m benchmark extract "
              f"conductance --models ... --datasets ...); semantic proxy only")
    table = pr.reliability_table(accuracy, proxies)
    out = Path(args.out) if args.out else Path("results") / protocol.name / "proxy-reliability"
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "proxy_reliability.csv", index=False)
    w = pr.wide(table)
    md = tabulate(w.map(lambda v: "" if not np.isfinite(v) else f"{v:.3f}"), headers="keys",
                  tablefmt="github", disable_numparse=True)
    (out / "proxy_reliability.md").write_text(
        f"# Proxy reliability on {protocol.name}\n\nPer model: Spearman over task pairs between "
        f"the proxy's distance and |acc_m(i) - acc_m(j)| (our reading of the DCD paper's Table 1)."
        f"\n\n{md}\n")
    pr.plot(table, out / "proxy_reliability.png")
    (out / "proxy_reliability.json").write_text(json.dumps({
        "protocol": protocol.name, "embedder": args.embedder, "beta": args.beta,
        "proxies": list(proxies), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }, indent=2))
    if "dcd" in proxies:  # the paper's Fig. 2
        dist = {m: got for m in protocol.zoo if (got := proxies["dcd"](m)) is not None}
        agreement = pr.model_agreement(dist)
        agreement.to_csv(out / "model_agreement.csv")
        pr.plot_agreement(agreement, out / "model_agreement.png")
    print(md)
    print(f"wrote {out} ({time.perf_counter() - started:.1f} s)")
    return 0
