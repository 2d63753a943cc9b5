// driver.cpp: the part of the CUDA driver API (libcuda.so) that cudarc calls for us,
// emulated on the host. One device, "cuda:0 (CUDA emulator on the CPU)", of compute
// capability 9.0. Device memory is host memory; every operation completes before it returns,
// so streams, events and the memory pool need no state.
//
// Modules: cuModuleLoadData receives the PTX that NVRTC compiled from our sources. The
// emulator keeps the names of its entry points; cuModuleGetFunction finds a kernel only when
// the PTX has it, and runs the host build of the same source (runtime.cpp).
//
// New allocations are filled with 0xff bytes (NaN in every float format), so a kernel that
// reads memory nobody wrote shows NaN instead of a plausible zero.
//
// With PGM_CUDA_EMULATOR_LAUNCHES=<file>, the names of the kernels a process launched are
// appended to <file> when it exits, one per line: CI checks that the tests launch them all.

#include "runtime.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <string>

extern "C" {

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef void *CUcontext;
typedef void *CUstream;
typedef void *CUevent;
typedef void *CUmemoryPool;

struct Module {
    std::set<std::string> entries;  // the `.entry` names of its PTX
};
struct Function {
    std::string name;
    emu::Thunk thunk;
};
typedef Module *CUmodule;
typedef Function *CUfunction;

}  // extern "C"

namespace {

constexpr CUresult SUCCESS = 0;
constexpr CUresult INVALID_VALUE = 1;
constexpr CUresult OUT_OF_MEMORY = 2;
constexpr CUresult INVALID_DEVICE = 101;
constexpr CUresult INVALID_IMAGE = 200;
constexpr CUresult NOT_FOUND = 500;
constexpr CUresult NOT_SUPPORTED = 801;

// The one context, stream and pool handles: any non-null value.
int the_context, the_pool, the_event;

const char *error_name(CUresult r) {
    switch (r) {
    case SUCCESS: return "CUDA_SUCCESS";
    case INVALID_VALUE: return "CUDA_ERROR_INVALID_VALUE";
    case OUT_OF_MEMORY: return "CUDA_ERROR_OUT_OF_MEMORY";
    case INVALID_DEVICE: return "CUDA_ERROR_INVALID_DEVICE";
    case INVALID_IMAGE: return "CUDA_ERROR_INVALID_IMAGE";
    case NOT_FOUND: return "CUDA_ERROR_NOT_FOUND";
    case NOT_SUPPORTED: return "CUDA_ERROR_NOT_SUPPORTED";
    default: return "CUDA_ERROR_UNKNOWN";
    }
}

// The entry points of a PTX module: the names after ".entry".
std::set<std::string> ptx_entries(const char *ptx) {
    std::set<std::string> names;
    for (const char *p = std::strstr(ptx, ".entry"); p; p = std::strstr(p + 1, ".entry")) {
        p += 6;
        while (*p == ' ' || *p == '\t') ++p;
        const char *end = p;
        while (*end && *end != '(' && *end != ' ' && *end != '\n' && *end != '\r') ++end;
        names.emplace(p, end);
    }
    return names;
}

CUresult allocate(CUdeviceptr *dptr, std::size_t bytes) {
    if (!dptr) return INVALID_VALUE;
    void *p = std::malloc(bytes ? bytes : 1);
    if (!p) return OUT_OF_MEMORY;
    std::memset(p, 0xff, bytes);
    *dptr = (CUdeviceptr)p;
    return SUCCESS;
}

void *host(CUdeviceptr d) { return (void *)d; }

// The kernels launched by this process, written out at exit (PGM_CUDA_EMULATOR_LAUNCHES).
class LaunchLog {
  public:
    void add(const std::string &name) {
        if (!path_) return;
        std::lock_guard<std::mutex> lock(mutex_);
        names_.insert(name);
    }
    ~LaunchLog() {
        FILE *f = path_ ? std::fopen(path_, "a") : nullptr;
        if (!f) return;
        for (const std::string &n : names_) std::fprintf(f, "%s\n", n.c_str());
        std::fclose(f);
    }

  private:
    const char *path_ = std::getenv("PGM_CUDA_EMULATOR_LAUNCHES");
    std::mutex mutex_;
    std::set<std::string> names_;
};
LaunchLog launch_log;

}  // namespace

extern "C" {

// ---- errors, driver, device ----------------------------------------------------------------
CUresult cuGetErrorName(CUresult r, const char **s) {
    *s = error_name(r);
    return SUCCESS;
}
CUresult cuGetErrorString(CUresult r, const char **s) { return cuGetErrorName(r, s); }
CUresult cuInit(unsigned int) { return SUCCESS; }
CUresult cuDriverGetVersion(int *v) {
    *v = 13000;
    return SUCCESS;
}
CUresult cuDeviceGetCount(int *n) {
    *n = 1;
    return SUCCESS;
}
CUresult cuDeviceGet(CUdevice *d, int ordinal) {
    if (ordinal != 0) return INVALID_DEVICE;
    *d = 0;
    return SUCCESS;
}
CUresult cuDeviceGetName(char *name, int len, CUdevice) {
    std::snprintf(name, (std::size_t)len, "CUDA emulator on the CPU");
    return SUCCESS;
}
CUresult cuDeviceTotalMem_v2(std::size_t *bytes, CUdevice) {
    *bytes = (std::size_t)16 << 30;
    return SUCCESS;
}
CUresult cuDeviceGetAttribute(int *v, int attribute, CUdevice) {
    switch (attribute) {
    case 1: *v = 1024; break;           // max threads per block
    case 2: case 3: *v = 1024; break;   // max block dims x, y
    case 4: *v = 64; break;             // max block dim z
    case 5: *v = 2147483647; break;     // max grid x
    case 6: case 7: *v = 65535; break;  // max grid y, z
    case 8: *v = 48 * 1024; break;      // shared memory per block
    case 10: *v = 32; break;            // warp size
    case 16: *v = 1; break;             // multiprocessors
    case 75: *v = 9; break;             // compute capability major
    case 76: *v = 0; break;             // minor
    case 115: *v = 1; break;            // memory pools supported
    default: *v = 0;
    }
    return SUCCESS;
}
CUresult cuMemGetInfo_v2(std::size_t *free, std::size_t *total) {
    *free = *total = (std::size_t)16 << 30;
    return SUCCESS;
}

// ---- context and streams: one of each, nothing to track ------------------------------------
CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice) {
    *c = &the_context;
    return SUCCESS;
}
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice) { return SUCCESS; }
CUresult cuCtxSetCurrent(CUcontext) { return SUCCESS; }
CUresult cuCtxGetCurrent(CUcontext *c) {
    *c = &the_context;
    return SUCCESS;
}
CUresult cuCtxSynchronize() { return SUCCESS; }
CUresult cuStreamSynchronize(CUstream) { return SUCCESS; }
CUresult cuStreamCreate(CUstream *s, unsigned int) {
    *s = nullptr;
    return SUCCESS;
}
CUresult cuStreamDestroy_v2(CUstream) { return SUCCESS; }
CUresult cuStreamWaitEvent(CUstream, CUevent, unsigned int) { return SUCCESS; }
CUresult cuEventCreate(CUevent *e, unsigned int) {
    *e = &the_event;
    return SUCCESS;
}
CUresult cuEventRecord(CUevent, CUstream) { return SUCCESS; }
CUresult cuEventSynchronize(CUevent) { return SUCCESS; }
CUresult cuEventDestroy_v2(CUevent) { return SUCCESS; }

// ---- memory --------------------------------------------------------------------------------
CUresult cuMemAlloc_v2(CUdeviceptr *d, std::size_t bytes) { return allocate(d, bytes); }
CUresult cuMemAllocAsync(CUdeviceptr *d, std::size_t bytes, CUstream) {
    return allocate(d, bytes);
}
CUresult cuMemFree_v2(CUdeviceptr d) {
    std::free(host(d));
    return SUCCESS;
}
CUresult cuMemFreeAsync(CUdeviceptr d, CUstream) { return cuMemFree_v2(d); }
CUresult cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice) {
    *pool = &the_pool;
    return SUCCESS;
}
CUresult cuDeviceGetDefaultMemPool(CUmemoryPool *pool, CUdevice d) {
    return cuDeviceGetMemPool(pool, d);
}
CUresult cuMemPoolSetAttribute(CUmemoryPool, int, void *) { return SUCCESS; }
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, std::size_t n) {
    std::memcpy(host(dst), src, n);
    return SUCCESS;
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, std::size_t n, CUstream) {
    return cuMemcpyHtoD_v2(dst, src, n);
}
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, std::size_t n) {
    std::memcpy(dst, host(src), n);
    return SUCCESS;
}
CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, std::size_t n, CUstream) {
    return cuMemcpyDtoH_v2(dst, src, n);
}
CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, std::size_t n) {
    std::memmove(host(dst), host(src), n);
    return SUCCESS;
}
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, std::size_t n, CUstream) {
    return cuMemcpyDtoD_v2(dst, src, n);
}
CUresult cuMemsetD8_v2(CUdeviceptr d, unsigned char v, std::size_t n) {
    std::memset(host(d), v, n);
    return SUCCESS;
}
CUresult cuMemsetD8Async(CUdeviceptr d, unsigned char v, std::size_t n, CUstream) {
    return cuMemsetD8_v2(d, v, n);
}
CUresult cuMemsetD32Async(CUdeviceptr d, unsigned int v, std::size_t n, CUstream) {
    unsigned int *p = (unsigned int *)host(d);
    for (std::size_t i = 0; i < n; ++i) p[i] = v;
    return SUCCESS;
}

// ---- modules and launches ------------------------------------------------------------------
CUresult cuModuleLoadData(CUmodule *m, const void *image) {
    if (!image) return INVALID_VALUE;
    std::set<std::string> entries = ptx_entries((const char *)image);
    if (entries.empty()) return INVALID_IMAGE;
    *m = new Module{std::move(entries)};
    return SUCCESS;
}
CUresult cuModuleUnload(CUmodule m) {
    delete m;
    return SUCCESS;
}
CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name) {
    if (!m->entries.count(name)) return NOT_FOUND;
    emu::Thunk thunk = emu::find_kernel(name);
    if (!thunk) {
        std::fprintf(stderr,
                     "CUDA emulator: the PTX has kernel %s but the emulator has no host build "
                     "of it (rebuild the emulator)\n",
                     name);
        return NOT_FOUND;
    }
    *f = new Function{name, thunk};
    return SUCCESS;
}
CUresult cuFuncGetAttribute(int *v, int, CUfunction) {
    *v = 0;
    return SUCCESS;
}
CUresult cuFuncSetAttribute(CUfunction, int, int) { return SUCCESS; }
CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                        unsigned int bx, unsigned int by, unsigned int bz, unsigned int shared,
                        CUstream, void **params, void **extra) {
    if (!f || extra || shared) return NOT_SUPPORTED;
    if ((std::size_t)bx * by * bz > 1024 || gy > 65535 || gz > 65535) return INVALID_VALUE;
    if (!gx || !gy || !gz || !bx || !by || !bz) return INVALID_VALUE;
    launch_log.add(f->name);
    emu::launch(f->name, f->thunk, params, {gx, gy, gz}, {bx, by, bz});
    return SUCCESS;
}

}  // extern "C"
