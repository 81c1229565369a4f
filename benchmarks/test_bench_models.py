"""The ``models`` case: ResNet-18 and MobileNetV2, training step and inference, plain Flax vs
jaxconv vs PyTorch (``models_case.py``).

One test per network, batch size and mode. Every implementation is compiled (timed into
``compile_s``) and its first result checked against plain Flax's; then all are timed together in
interleaved rounds, in a fresh random order each round, and one pytest-benchmark entry per
implementation joins the JSON (``extra_info["kind"] == "model"``).
"""

from __future__ import annotations

import bench
import models_case


def test_models(model_point: models_case.ModelPoint, size: str, model_results: list):
    impls = [i for i in models_case.IMPLS if i != "torch" or models_case.torch_installed()]
    fns = models_case.calls(model_point.row, model_point.mode, impls)
    compile_s = models_case.compile_and_check(fns)
    times = models_case.interleaved(fns, bench.MODEL_ROUNDS[size])
    order = models_case.ROWS[size].index(model_point.row)
    for impl, stats in models_case.summary(times).items():
        model_results.append({
            "group": f"{bench.MODELS} {model_point.row.label} {model_point.mode}",
            "name": f"test_models[{model_point.id}-{impl}]",
            "fullname": f"benchmarks/test_bench_models.py::test_models[{model_point.id}-{impl}]",
            "params": None,
            "extra_info": {
                "kind": "model", "case": bench.MODELS, "row": model_point.row.label,
                "order": order, "network": model_point.row.network,
                "batch": model_point.row.batch, "mode": model_point.mode, "impl": impl,
                "compile_s": compile_s[impl],
            },
            "stats": stats,
        })
