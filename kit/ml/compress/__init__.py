"""Making models fit the edge: count their cost, quantize them, prune them, and measure every variant.

One idea per module:

* :mod:`kit.ml.compress.count` — parameters and MACs per layer of any Keras model;
* :mod:`kit.ml.compress.quantize` — TFLite conversion: float32, dynamic range, float16, full int8;
* :mod:`kit.ml.compress.prune` — magnitude (unstructured) and L1 filter (structured) pruning;
* :mod:`kit.ml.compress.arch` — a standard-convolution twin of a depthwise-separable model;
* :mod:`kit.ml.compress.tune` — the one training / fine-tuning recipe every variant gets;
* :mod:`kit.ml.compress.evaluate` — every variant hosted and measured the same way, one table, a Pareto plot;
* :mod:`kit.ml.compress.variants` — all of the above for one trained model: files, model cards, the table;
* :mod:`kit.ml.compress.cli` — ``kit model compress``.

TensorFlow is needed only when a function here runs; importing this package stays light.
"""
