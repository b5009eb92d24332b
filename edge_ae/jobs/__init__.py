"""Batch runners, above the tasks: one file's denoise job (``denoise_job``) and the same jobs on
Ray Data (``ray_engine``, with its cluster connection and process reaper). The I/O layer below
(``edge_ae.files``: reading, writing, planning) imports no task package; these do."""
