"""Dataset generators, ingest and the on-disk dataset format (`data.npz` + `manifest.json`)."""
