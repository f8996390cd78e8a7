"""`softreg export`: a saved model for use outside softreg, as ONNX or as plain JSON.

Both carry everything softreg does before the weights. For a row of raw values x (the model's
input columns, in order) the model computes

    x_filled = x with each missing (NaN) number replaced by its column's training mean
    f        = the model's features: x_filled, after each imputed column a 0/1 "was missing",
               and for each categorical column one 0/1 per level (a missing cell is the level
               "(missing)"; the rare levels, and levels training never saw, share the last
               "(other)" column when the column has one, and are all zeros when not)
    z        = ((f - mean) / scale) W + b,   p = softmax(z),   label = classes[argmax z]

ONNX (built with the ``onnx`` package's helpers; ``pip install softreg[onnx]``): input
``features`` (N, numeric and boolean columns) float32 or float64, missing as NaN, and, when the
model has categorical columns, ``categories`` (N, categorical columns) of text, a missing cell as
"" (or any spelling softreg reads as missing, "nan", "NA", pandas' "<NA>"); a column softreg read
as booleans or numbers also takes "True"/"False" and "1.0" for "1". The batch dimension is free.
Outputs ``label`` (N,) and ``probabilities`` (N, K).
"""

from __future__ import annotations

import json

import numpy as np

from softreg.data.encoding import MISSING_LEVEL, OTHER_LEVEL
from softreg.data.formats.table import FALSE_CELLS, MISSING_CELLS, TRUE_CELLS

EXPORT_FORMATS = ("onnx", "json")
JSON_FORMAT = "softreg-linear-softmax"
OPSET = 17
ML_OPSET = 2  # ai.onnx.ml: LabelEncoder with string keys and int64 values


class NotExportable(ValueError):
    """A model that a format cannot carry; the message says why and what can."""


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
             **({"levels": column["levels"], "other": column["other"], "read_as": column["read_as"]}
                if column["kind"] == "categorical" else {})}
            for column in encoding["columns"] if column["kind"] != "ignored"]


def category_codes(column: dict) -> dict:
    """The text of a categorical column's value -> its level's position among the one-hot
    columns: the levels as softreg wrote them; the spellings of a missing cell (also pandas'
    "<NA>") when "(missing)" is a level; for a column read as booleans ("true"/"false" levels)
    the other spellings of true and false; for one read as numbers the float spelling of each
    level ("1.0" for "1", what pandas writes of a number column with a missing cell)."""
    codes = {level: i for i, level in enumerate(column["levels"])}
    aliases = {}
    if MISSING_LEVEL in codes:
        aliases.update({spelling: MISSING_LEVEL for spelling in [*MISSING_CELLS, "<NA>"]})
    if column.get("read_as") == "bool":
        aliases.update({**{spelling: "true" for spelling in TRUE_CELLS}, **{spelling: "false" for spelling in FALSE_CELLS}})
    elif column.get("read_as", "string") not in ("string", "large_string"):
        for level in column["levels"]:
            try:
                aliases[str(float(level))] = level
            except ValueError:
                continue
    return {**{alias: codes[level] for alias, level in aliases.items() if level in codes}, **codes}  # levels win


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
    """The model as an ONNX graph (opset ``OPSET``, ``ai.onnx.ml`` ``ML_OPSET``), checked by
    ``onnx.checker``: every step of the module docstring's scoring is a node.

    One function of about 100 lines: the graph is one list of nodes and initializers joined by
    their tensor names; its three parts (numbers, categories, scoring) are marked by comments,
    and split up they would pass those lists and names between them."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise NotExportable("ONNX export needs the onnx package: pip install 'softreg[onnx]'") from None
    if dtype not in ("float32", "float64"):
        raise NotExportable(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    numpy_dtype = np.dtype(dtype)
    element = TensorProto.FLOAT if dtype == "float32" else TensorProto.DOUBLE
    columns = input_columns(model_file.header)
    numbers = [column for column in columns if column["kind"] != "categorical"]
    categories = [column for column in columns if column["kind"] == "categorical"]
    n_classes = len(model_file.classes_)

    def constant(name, values, kind=None):
        return numpy_helper.from_array(np.asarray(values, dtype=kind or numpy_dtype), name)

    nodes, initializers, inputs = [], [], []
    # The graph computes blocks of features (the filled numbers, their 0/1 missing columns, each
    # categorical column's one-hot block), then one Gather puts them in the model's feature order.
    blocks, place = [], {}  # block tensor names; feature name -> position in the blocks side by side
    if numbers:
        inputs.append(helper.make_tensor_value_info("features", element, ["N", len(numbers)]))
        filled = "features"
        if any(column["fill"] is not None for column in numbers):  # where(isnan(x), fill, x); NaN: no fill learned
            initializers.append(constant("fill", [np.nan if c["fill"] is None else c["fill"] for c in numbers]))
            nodes += [helper.make_node("IsNaN", ["features"], ["missing"]),
                      helper.make_node("Where", ["missing", "fill", "features"], ["filled"])]
            filled = "filled"
        blocks.append(filled)
        place.update({column["name"]: j for j, column in enumerate(numbers)})
        flagged = [j for j, column in enumerate(numbers) if column["indicator"]]
        if flagged:
            initializers.append(constant("indicator_columns", flagged, np.int64))
            nodes += [helper.make_node("Cast", ["missing"], ["missing_numbers"], to=element),
                      helper.make_node("Gather", ["missing_numbers", "indicator_columns"], ["indicators"], axis=1)]
            blocks.append("indicators")
            place.update({f"{numbers[j]['name']}:missing": len(numbers) + k for k, j in enumerate(flagged)})
    if categories:
        inputs.append(helper.make_tensor_value_info("categories", TensorProto.STRING, ["N", len(categories)]))
    for q, column in enumerate(categories):
        levels, width = column["levels"], len(column["levels"]) + bool(column["other"])
        codes = category_codes(column)
        unknown = len(levels) if column["other"] else -1  # the other level, or no column (all zeros)
        keys = list(codes) or [""]  # every level rare: each value is the other level (an empty key list is not allowed)
        initializers += [constant(f"category_{q}", [q], np.int64), constant(f"codes_{q}", np.arange(width), np.int64)]
        nodes += [helper.make_node("Gather", ["categories", f"category_{q}"], [f"text_{q}"], axis=1),
                  helper.make_node("LabelEncoder", [f"text_{q}"], [f"code_{q}"], domain="ai.onnx.ml",
                                   keys_strings=keys, values_int64s=[codes.get(key, unknown) for key in keys],
                                   default_int64=unknown),
                  helper.make_node("Equal", [f"code_{q}", f"codes_{q}"], [f"is_level_{q}"]),
                  helper.make_node("Cast", [f"is_level_{q}"], [f"one_hot_{q}"], to=element)]
        offset = len(place)
        names = [f"{column['name']}={level}" for level in levels] + ([f"{column['name']}={OTHER_LEVEL}"]
                                                                     if column["other"] else [])
        place.update({name: offset + i for i, name in enumerate(names)})
        blocks.append(f"one_hot_{q}")
    order = [place[name] for name in model_file.header["feature_names"]]
    features = blocks[0]
    if len(blocks) > 1:
        nodes.append(helper.make_node("Concat", blocks, ["stacked"], axis=1))
        features = "stacked"
    if order != list(range(len(order))):
        initializers.append(constant("feature_order", order, np.int64))
        nodes.append(helper.make_node("Gather", [features, "feature_order"], ["model_features"], axis=1))
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
        nodes, "softreg", inputs,
        [helper.make_tensor_value_info("label", label_type, ["N"]),
         helper.make_tensor_value_info("probabilities", element, ["N", n_classes])],
        initializer=initializers)
    opsets = [helper.make_opsetid("", OPSET)] + ([helper.make_opsetid("ai.onnx.ml", ML_OPSET)] if categories else [])
    model = helper.make_model(graph, opset_imports=opsets, producer_name="softreg")
    model.doc_string = (("features: " + json.dumps([column["name"] for column in numbers]) + ", missing as NaN; "
                         if numbers else "")
                        + ("categories: " + json.dumps([column["name"] for column in categories])
                           + ", as text, missing as '' or 'nan'" if categories else ""))
    onnx.checker.check_model(model, full_check=True)
    return model
