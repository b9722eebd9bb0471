"""Audits next to the network's accuracy: shortcut baselines (metadata-only, tiny-image), the near-duplicate
and leakage audit on features, and the fast pixel-probe anatomy table."""
