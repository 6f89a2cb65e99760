"""Making models fit the edge: count their cost, quantize them, prune them, and measure every variant.

One idea per module:

* :mod:`kit.ml.compress.count` — parameters and MACs per layer of any Keras model;
* :mod:`kit.ml.compress.quantize` — TFLite conversion: float32, dynamic range, float16, full int8;
* :mod:`kit.ml.compress.prune` — magnitude (unstructured) and L1 filter (structured) pruning;
* :mod:`kit.ml.compress.arch` — a standard-convolution twin of a depthwise-separable model;
* :mod:`kit.ml.compress.tune` — the one training / fine-tuning recipe every variant gets;
* :mod:`kit.ml.compress.evaluate` — every variant hosted and measured the same way, one table, a Pareto plot;
* :mod:`kit.ml.compress.variants` — all of the above for one trained model: files, model cards, the table;
* :mod:`kit.ml.compress.qat` — BatchNorm folding and a fake-quantized twin for quantization-aware training;
* :mod:`kit.ml.compress.share` — k-means weight sharing (a codebook per layer);
* :mod:`kit.ml.compress.integer` — int8 convolutions in integers only, bit for bit with TFLite;
* :mod:`kit.ml.compress.sensitivity` — per-layer sensitivity scan, policy pricing, uniform and greedy policies;
* :mod:`kit.ml.compress.search` — an evolutionary per-layer policy search under a MAC budget;
* :mod:`kit.ml.compress.cli` — ``kit model compress``.

TensorFlow is needed only when a function here runs; importing this package stays light.
"""
