// hwnas profiling firmware: runs a .tflite model that the host placed in memory at run time
// through TFLite Micro with the CMSIS-NN kernels and reports, one line each, the arena TFLM used,
// every Invoke()'s SysTick count and every operator's count in the last Invoke(). The job and
// the line format are `profilers/mcu/protocol.py`. Built two ways: with semihosting, the job is
// placed by QEMU's generic loader and the lines go to the host's stdout; with HWNAS_SERIAL, the
// job arrives over the UART (serial.c) and the lines go back over it, one job after another.
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "tensorflow/lite/schema/schema_generated.h"

extern "C" void hwnas_counter_start(void);
extern "C" uint64_t hwnas_counter_read(void);
#ifdef HWNAS_SERIAL
extern "C" void hwnas_serial_init(void);
extern "C" void hwnas_serial_write(const char* text);
extern "C" void hwnas_serial_read(uint8_t* into, uint32_t count);
#endif

// One report line (or part of one) to the host, over the build's transport.
static void Emit(const char* format, ...) {
  char text[192];
  va_list args;
  va_start(args, format);
  vsnprintf(text, sizeof(text), format, args);
  va_end(args);
#ifdef HWNAS_SERIAL
  hwnas_serial_write(text);
#else
  fputs(text, stdout);
#endif
}

// The board's 16 MiB PSRAM (HWNAS_PSRAM_ADDRESS, set by the build for the core's board:
// 0x21000000 on mps2-an386, 0x60000000 on mps2-an500): the job (header + model, up to 8 MiB) in
// its lower half, the tensor arena (4 MiB: AllocateTensors() aborted with an 8 MiB one) in its
// upper half, so a model whose arena exceeds a real part's SRAM still runs and reports the bytes
// it needs.
#ifndef HWNAS_PSRAM_ADDRESS
#error "HWNAS_PSRAM_ADDRESS: the build defines where the board's PSRAM is"
#endif
#define HWNAS_JOB_ADDRESS HWNAS_PSRAM_ADDRESS
#define HWNAS_ARENA_ADDRESS (HWNAS_PSRAM_ADDRESS + 0x800000u)
#define HWNAS_ARENA_BYTES (4 * 1024 * 1024)
#define HWNAS_MAX_EVENTS 256
#define HWNAS_JOB_MAGIC 0x4d4e5748u  // "HWNM", little-endian

// The job the host loads at HWNAS_JOB_ADDRESS: this header, then the model 16 bytes in.
struct JobHeader {
  uint32_t magic;
  uint32_t model_bytes;
  uint32_t invokes;
  uint32_t flags;  // bit 0: print the output tensor's bytes after the last invoke
};

static uint8_t* const tensor_arena = reinterpret_cast<uint8_t*>(HWNAS_ARENA_ADDRESS);

// Per-operator counts of one Invoke(), read from the same SysTick counter.
class OpCounter : public tflite::MicroProfilerInterface {
 public:
  uint32_t BeginEvent(const char* tag) override {
    if (count_ >= HWNAS_MAX_EVENTS) return HWNAS_MAX_EVENTS;
    tags_[count_] = tag;
    begin_[count_] = hwnas_counter_read();
    return count_++;
  }
  void EndEvent(uint32_t handle) override {
    if (handle < HWNAS_MAX_EVENTS) ticks_[handle] = hwnas_counter_read() - begin_[handle];
  }
  void Reset() { count_ = 0; }
  void Print() const {
    for (uint32_t i = 0; i < count_; ++i) {
      Emit("hwnas op %lu %s %llu\n", (unsigned long)i, tags_[i], (unsigned long long)ticks_[i]);
    }
  }

 private:
  const char* tags_[HWNAS_MAX_EVENTS] = {};
  uint64_t begin_[HWNAS_MAX_EVENTS] = {};
  uint64_t ticks_[HWNAS_MAX_EVENTS] = {};
  uint32_t count_ = 0;
};

static void AddKernels(tflite::MicroMutableOpResolver<24>& resolver) {
  resolver.AddAdd();
  resolver.AddAveragePool2D();
  resolver.AddConcatenation();
  resolver.AddConv2D();
  resolver.AddDepthwiseConv2D();
  resolver.AddDequantize();
  resolver.AddFullyConnected();
  resolver.AddHardSwish();
  resolver.AddLogistic();
  resolver.AddMaxPool2D();
  resolver.AddMean();
  resolver.AddMul();
  resolver.AddPad();
  resolver.AddQuantize();
  resolver.AddRelu();
  resolver.AddRelu6();
  resolver.AddReshape();
  resolver.AddSoftmax();
  resolver.AddStridedSlice();
  resolver.AddSqueeze();
  resolver.AddSum();
  resolver.AddTranspose();
}

static void FillInput(TfLiteTensor* input) {
  // The planner may reuse the input's memory for intermediate tensors: refill before each run.
  // A float input (a micro-model the quantiser left float at its entry) gets values in [0, 1).
  if (input->type == kTfLiteFloat32) {
    size_t count = input->bytes / sizeof(float);
    for (size_t i = 0; i < count; ++i) input->data.f[i] = (float)((i * 7u + 3u) & 255u) / 256.0f;
    return;
  }
  for (size_t i = 0; i < input->bytes; ++i) input->data.uint8[i] = (uint8_t)(i * 7u + 3u);
}

static void PrintOutput(const TfLiteTensor* output) {
  Emit("hwnas output %u ", (unsigned)output->bytes);
  for (size_t i = 0; i < output->bytes; ++i) Emit("%02x", output->data.uint8[i]);
  Emit("\n");
}

static int RunJob(const JobHeader* job) {
  const uint8_t* model_data = reinterpret_cast<const uint8_t*>(job) + 16;
  const tflite::Model* model = tflite::GetModel(model_data);
  static tflite::MicroMutableOpResolver<24> resolver;
  static bool registered = false;
  if (!registered) AddKernels(resolver);
  registered = true;
  static OpCounter counter;
  tflite::MicroInterpreter interpreter(model, resolver, tensor_arena, HWNAS_ARENA_BYTES, nullptr,
                                       &counter);
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    Emit("hwnas error AllocateTensors failed\n");
    return 3;
  }
  TfLiteTensor* input = interpreter.input(0);
  Emit("hwnas model %lu arena_used %u input %u\n", (unsigned long)job->model_bytes,
         (unsigned)interpreter.arena_used_bytes(), (unsigned)input->bytes);
  for (uint32_t n = 0; n < job->invokes; ++n) {
    FillInput(input);
    counter.Reset();
    hwnas_counter_start();
    TfLiteStatus status = interpreter.Invoke();
    uint64_t ticks = hwnas_counter_read();
    if (status != kTfLiteOk) {
      Emit("hwnas error Invoke failed\n");
      return 4;
    }
    Emit("hwnas invoke %lu %llu\n", (unsigned long)n, (unsigned long long)ticks);
  }
  counter.Print();
  if (job->flags & 1u) PrintOutput(interpreter.output(0));
  return 0;
}

#ifdef HWNAS_SERIAL
// Serve jobs from the serial line, one after another: "hwnas ready", then per job the header
// and the model bytes in, the report lines and "hwnas done RC" out.
int main() {
  hwnas_serial_init();
  JobHeader* job = reinterpret_cast<JobHeader*>(HWNAS_JOB_ADDRESS);
  for (;;) {
    Emit("hwnas ready arena %u\n", (unsigned)HWNAS_ARENA_BYTES);
    hwnas_serial_read(reinterpret_cast<uint8_t*>(job), 16);
    if (job->magic != HWNAS_JOB_MAGIC || job->invokes == 0 ||
        job->model_bytes > HWNAS_ARENA_ADDRESS - HWNAS_JOB_ADDRESS - 16) {
      Emit("hwnas error bad job header\n");
      continue;
    }
    hwnas_serial_read(reinterpret_cast<uint8_t*>(job) + 16, job->model_bytes);
    Emit("hwnas done %d\n", RunJob(job));
  }
}
#else
int main() {
  Emit("hwnas firmware 1 arena %u\n", (unsigned)HWNAS_ARENA_BYTES);
  const JobHeader* job = reinterpret_cast<const JobHeader*>(HWNAS_JOB_ADDRESS);
  if (job->magic != HWNAS_JOB_MAGIC || job->invokes == 0) {
    Emit("hwnas error no job at 0x%08lx\n", (unsigned long)HWNAS_JOB_ADDRESS);
    return 2;
  }
  int rc = RunJob(job);
  Emit("hwnas done %d\n", rc);
  return rc;
}
#endif
