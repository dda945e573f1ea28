"""The private hub: repos hosted in `hosted` projects (commits, trees, refs, uploads)."""
