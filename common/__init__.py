"""The few general helpers every package shares, one of each: atomic writes (`files`), quiet C
output (`quiet`), and where hwnas keeps its data and caches (`paths`)."""
