"""The readers of each dataset format, which :func:`softreg.data.dataset.load_dataset` picks by
name or suffix:

- :mod:`~softreg.data.formats.builtin`: the built-in datasets and synthetic data;
- :mod:`~softreg.data.formats.delimited`: CSV/TSV files;
- :mod:`~softreg.data.formats.svmlight`: svmlight/libsvm text;
- :mod:`~softreg.data.formats.npz`: .npz archives (:func:`~softreg.data.formats.npz.read_npz`);
- :mod:`~softreg.data.formats.prepared`: prepared .npy datasets, read and written.

Folders of Parquet or CSV/TSV partitions are :mod:`softreg.data.partitions`.
"""
