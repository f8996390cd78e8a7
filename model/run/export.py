"""`softreg export`: a saved model for use outside softreg, as ONNX or as plain JSON.

Both carry everything softreg does before the weights. For a row of raw features x (the model's
input columns, in order) the model computes

    x_filled = x with each missing (NaN) number replaced by its column's training mean
    f        = the model's features: x_filled, and after each imputed column a 0/1 "was missing"
    z        = ((f - mean) / scale) W + b,   p = softmax(z),   label = classes[argmax z]

ONNX (built with the ``onnx`` package's helpers; ``pip install softreg[onnx]``): input
``features`` (N, C) float32 or float64 with a free batch dimension, outputs ``label`` (N,) and
``probabilities`` (N, K). A model whose table had categorical columns is refused for ONNX (their
one-hot encoding is not in the graph yet); JSON carries every model.
"""

from __future__ import annotations

import json

import numpy as np

EXPORT_FORMATS = ("onnx", "json")
JSON_FORMAT = "softreg-linear-softmax"
OPSET = 17


class NotExportable(ValueError):
    """A model that a format cannot carry; the message says why and what can."""


def export_formats(header: dict) -> list[str]:
    """The formats a model (its header) can be exported to."""
    encoding = header.get("encoding")
    categorical = encoding and any(column["kind"] == "categorical" for column in encoding["columns"])
    return ["json"] if categorical else ["onnx", "json"]


def input_columns(header: dict) -> list[dict]:
    """The model's input columns in order: name, kind (numeric, boolean or categorical), the fill
    of a missing number (None: none was learned) and whether a 0/1 missing column follows it among
    the features; a categorical column's levels (one 0/1 feature each; a missing value is the
    level "(missing)") and ``other``, the rare levels that share one last feature with every
    level training never saw (empty: no such feature, such a value is all zeros)."""
    encoding = header.get("encoding")
    if not encoding:
        return [{"name": name, "kind": "numeric", "fill": None, "indicator": False}
                for name in header["feature_names"]]
    return [{"name": column["name"], "kind": column["kind"], "fill": column["fill"],
             "indicator": bool(column["indicator"]),
             **({"levels": column["levels"], "other": column["other"]} if column["kind"] == "categorical" else {})}
            for column in encoding["columns"] if column["kind"] != "ignored"]


def json_document(model_file) -> dict:
    """The model as plain data (the module's docstring says how to score it)."""
    header = model_file.header
    return {
        "format": JSON_FORMAT, "version": 1,
        "scoring": "f = features of x (fill missing, add missing columns); z = ((f - mean) / scale) W + b; "
                   "p = softmax(z); label = classes[argmax z]",
        "classes": [c.item() if hasattr(c, "item") else c for c in model_file.classes_],
        "inputs": input_columns(header), "feature_names": list(header["feature_names"]),
        "mean": model_file.feature_mean.tolist(), "scale": model_file.feature_scale.tolist(),
        "weights": model_file.weights.tolist(), "bias": model_file.bias.tolist(),
        "encoding": header.get("encoding"),
    }


def onnx_model(model_file, dtype: str = "float32"):
    """The model as an ONNX graph (opset ``OPSET``), checked by ``onnx.checker``."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise NotExportable("ONNX export needs the onnx package: pip install 'softreg[onnx]'") from None
    header = model_file.header
    if "onnx" not in export_formats(header):
        raise NotExportable("the model's table has categorical columns, whose one-hot encoding the ONNX graph does "
                            "not hold yet; export it as json (the encoding's levels are in it) instead")
    if dtype not in ("float32", "float64"):
        raise NotExportable(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    numpy_dtype = np.dtype(dtype)
    element = TensorProto.FLOAT if dtype == "float32" else TensorProto.DOUBLE
    columns = input_columns(header)
    n_inputs, n_classes = len(columns), len(model_file.classes_)

    def constant(name, values, kind=None):
        return numpy_helper.from_array(np.asarray(values, dtype=kind or numpy_dtype), name)

    nodes, initializers = [], []
    features = "features"
    imputed = [j for j, column in enumerate(columns) if column["fill"] is not None]
    if imputed:  # x_filled = where(isnan(x), fill, x), a fill per column (NaN where none was learned)
        fills = [column["fill"] if column["fill"] is not None else np.nan for column in columns]
        initializers.append(constant("fill", fills))
        nodes += [helper.make_node("IsNaN", ["features"], ["missing"]),
                  helper.make_node("Where", ["missing", "fill", "features"], ["filled"])]
        features = "filled"
    indicators = [j for j, column in enumerate(columns) if column["indicator"]]
    if indicators:  # the 0/1 missing columns, then every feature in the model's order
        order = []
        for j, column in enumerate(columns):
            order.append(j)
            if column["indicator"]:
                order.append(n_inputs + indicators.index(j))
        initializers += [constant("indicator_columns", indicators, np.int64), constant("feature_order", order, np.int64)]
        nodes += [helper.make_node("Cast", ["missing"], ["missing_numbers"], to=element),
                  helper.make_node("Gather", ["missing_numbers", "indicator_columns"], ["indicator_values"], axis=1),
                  helper.make_node("Concat", [features, "indicator_values"], ["stacked"], axis=1),
                  helper.make_node("Gather", ["stacked", "feature_order"], ["model_features"], axis=1)]
        features = "model_features"
    initializers += [constant("mean", model_file.feature_mean), constant("scale", model_file.feature_scale),
                     constant("W", model_file.weights), constant("b", model_file.bias)]
    nodes += [helper.make_node("Sub", [features, "mean"], ["centered"]),
              helper.make_node("Div", ["centered", "scale"], ["standardized"]),
              helper.make_node("MatMul", ["standardized", "W"], ["product"]),
              helper.make_node("Add", ["product", "b"], ["logits"]),
              helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
              helper.make_node("ArgMax", ["logits"], ["class_index"], axis=1, keepdims=0)]
    classes = np.asarray(model_file.classes_)
    if classes.dtype.kind in "iu":
        initializers.append(constant("classes", classes, np.int64))
        label_type = TensorProto.INT64
    else:
        initializers.append(helper.make_tensor("classes", TensorProto.STRING, [n_classes],
                                               [str(c).encode("utf-8") for c in classes]))
        label_type = TensorProto.STRING
    nodes.append(helper.make_node("Gather", ["classes", "class_index"], ["label"], axis=0))
    graph = helper.make_graph(
        nodes, "softreg", [helper.make_tensor_value_info("features", element, ["N", n_inputs])],
        [helper.make_tensor_value_info("label", label_type, ["N"]),
         helper.make_tensor_value_info("probabilities", element, ["N", n_classes])],
        initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="softreg")
    model.doc_string = ("softreg model: inputs " + json.dumps([column["name"] for column in columns])
                        + "; missing numbers as NaN")
    onnx.checker.check_model(model, full_check=True)
    return model
