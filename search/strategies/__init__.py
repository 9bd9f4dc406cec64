"""Search strategies: FBNet, ProxylessNAS, HardCoRe-NAS (and the baselines in search.baselines)."""
