"""Studies, layered (DESIGN.md §2): `spec` (TOML -> frozen `StudySpec`, pure data; with
`parse`, `parse_model` and `_table`, the validation), `plan` (grid, chunks, the
per-chunk job calling `kl.sweep`'s kernel, combine), `store` (chunk files, manifest,
lock, resume) and `run` (backends, progress, `run_study`: the only module importing
the other three). The public names are in `kuralab.study`.
"""
