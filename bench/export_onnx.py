"""The test model as transformers.js loads it (dev-only, for scripts/bench-browser).

    python bench/export_onnx.py CHECKPOINT_DIR OUT_DIR

CHECKPOINT_DIR: an f32 Hugging Face folder written from the test GGUF by the
CLI (`--export-checkpoint DIR --export-dtype f32`). OUT_DIR gets what
transformers.js's own conversion script (scripts/convert.py) produces:
config + tokenizer files, `onnx/model.onnx` (fp32: optimum's
`text-generation-with-past` export, one decoder graph with past key/values,
then onnxslim) and `onnx/model_quantized.onnx` (q8: onnxruntime's dynamic
int8 quantization with transformers.js's settings: per-tensor, QInt8
weights, QUInt8 activations, MatMul with constant B only).
"""
import os
import shutil
import sys
import tempfile

import onnx
import onnxslim
from onnxruntime.quantization import QuantizationMode, QuantType
from onnxruntime.quantization.onnx_quantizer import ONNXQuantizer
from onnxruntime.quantization.registry import IntegerOpsRegistry
from optimum.exporters.onnx import main_export


def main(src, out):
    os.makedirs(os.path.join(out, "onnx"), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        main_export(model_name_or_path=src, output=tmp, task="text-generation-with-past", do_validation=False, device="cpu")
        for name in os.listdir(tmp):
            if not name.endswith((".onnx", ".onnx_data")):
                shutil.copy(os.path.join(tmp, name), os.path.join(out, name))
        fp32 = onnxslim.slim(onnx.load(os.path.join(tmp, "model.onnx")))
    onnx.save(fp32, os.path.join(out, "onnx", "model.onnx"))
    quantizer = ONNXQuantizer(
        fp32,
        per_channel=False,
        reduce_range=False,
        mode=QuantizationMode.IntegerOps,  # dynamic: activation scales computed at run time
        static=False,
        weight_qType=QuantType.QInt8,
        activation_qType=QuantType.QUInt8,
        tensors_range=None,
        nodes_to_quantize=[],
        nodes_to_exclude=[],
        op_types_to_quantize=list(IntegerOpsRegistry.keys()),
        extra_options=dict(EnableSubgraph=True, MatMulConstBOnly=True),
    )
    quantizer.quantize_model()
    onnx.save(quantizer.model.model, os.path.join(out, "onnx", "model_quantized.onnx"))
    for name in sorted(os.listdir(os.path.join(out, "onnx"))):
        print(name, os.path.getsize(os.path.join(out, "onnx", name)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
