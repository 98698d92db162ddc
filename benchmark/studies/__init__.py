"""Studies beyond one run: parameter sweeps and sample efficiency (metrics vs images)."""
