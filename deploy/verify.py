"""Numerical checks of an exported file against the PyTorch network it came from, on the run's
test split: largest absolute logit difference, top-1 agreement, accuracy and its drop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deploy.runtime import Quantization, predict_file

FP32_MAX_ABS_DIFF = 1e-4  # fp32 files must reproduce PyTorch's logits this closely
INT8_MAX_DROP_PP = 1.0  # int8 files may lose at most this much accuracy (percentage points)
REFERENCE_CHUNK = 256


def reference_logits(module: Any, images: np.ndarray) -> np.ndarray:
    import torch

    outputs = []
    with torch.no_grad():
        for start in range(0, len(images), REFERENCE_CHUNK):
            batch = torch.from_numpy(images[start : start + REFERENCE_CHUNK])
            outputs.append(module(batch).numpy())
    return np.concatenate(outputs).astype(np.float32)


def verify_file(
    path: Path,
    images: np.ndarray,
    labels: np.ndarray,
    reference: np.ndarray,
    *,
    int8: bool,
    real_labels: bool = True,
    input_quantization: Quantization | None = None,
) -> dict[str, Any]:
    """Runs `path` on `images` (int8 inputs quantised with `input_quantization` if given); fp32
    files pass when the logits match within FP32_MAX_ABS_DIFF, int8 files when accuracy drops
    by at most INT8_MAX_DROP_PP (or, without real labels, when they load and run)."""
    logits = predict_file(path, images, input_quantization)
    if logits.shape != reference.shape:
        raise ValueError(
            f"{path.name} gives logits of shape {logits.shape}, PyTorch {reference.shape}"
        )
    predicted, expected = logits.argmax(1), reference.argmax(1)
    accuracy = float((predicted == labels).mean())
    reference_accuracy = float((expected == labels).mean())
    result: dict[str, Any] = {
        "samples": len(images),
        "max_abs_diff": float(np.abs(logits - reference).max()),
        "top1_agreement": float((predicted == expected).mean()),
        "accuracy": accuracy,
        "reference_accuracy": reference_accuracy,
        "accuracy_drop_pp": 100.0 * (reference_accuracy - accuracy),
    }
    if not int8:
        result["check"] = f"max_abs_diff <= {FP32_MAX_ABS_DIFF:g}"
        result["passed"] = result["max_abs_diff"] <= FP32_MAX_ABS_DIFF
    elif real_labels:
        result["check"] = f"accuracy_drop_pp <= {INT8_MAX_DROP_PP:g}"
        result["passed"] = result["accuracy_drop_pp"] <= INT8_MAX_DROP_PP
    else:
        result["check"] = "loads and runs (random inputs: no accuracy to compare)"
        result["passed"] = bool(np.isfinite(logits).all())
    return result


def failures(checks: dict[str, dict[str, Any]]) -> list[str]:
    """One line per format whose verification did not pass."""
    lines = []
    for fmt, entry in checks.items():
        verification = entry.get("verification") or {}
        if verification and not verification.get("passed"):
            lines.append(
                f"{fmt}: {verification['check']} fails (max_abs_diff "
                f"{verification['max_abs_diff']:.3g}, accuracy drop "
                f"{verification['accuracy_drop_pp']:.2f} pp)"
            )
    return lines
