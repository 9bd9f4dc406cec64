"""Microcontroller targets: the profiling firmware (TFLite Micro + CMSIS-NN) built from the offline
TFLM kit, run on QEMU's Cortex-M boards, and the line protocol it reports in."""
