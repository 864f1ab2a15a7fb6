"""Runs ONNX's own checker (with full_check: type and shape inference too) on every .onnx file in a
directory. Usage: python3 check_onnx.py DIR. Exits non-zero when a file fails or none is found."""
import pathlib
import sys

import onnx


def main(directory):
    files = sorted(pathlib.Path(directory).glob("*.onnx"))
    if not files:
        print(f"check_onnx: no .onnx files in {directory}")
        return 1
    failed = 0
    for path in files:
        try:
            onnx.checker.check_model(str(path), full_check=True)
            model = onnx.load(str(path))
            print(f"{path.name}: ok ({len(model.graph.node)} nodes, {len(model.graph.initializer)} initializers,"
                  f" opset {model.opset_import[0].version})")
        except Exception as error:  # the checker raises several types; each one is a failure
            print(f"{path.name}: FAILED: {error}")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
