// runtime.cpp: runs a kernel launch on the host. Blocks run one after another; the threads
// of a block run as fibers on the calling thread, warp by warp. A warp's lanes each run until
// they finish or reach a barrier: at a warp shuffle, once all its live lanes wait there, each
// receives its source lane's value and the warp goes on; at `__syncthreads` the warp stops
// until every warp of the block is there. So a warp runs ahead of the others up to the next
// block barrier, as it may on a GPU, and what another warp writes without a barrier in
// between is seen too early or too late. Threads that have returned no longer count, as on
// the GPU since Volta. Anything else is a deadlock the GPU would hang on (or a shuffle that
// reads an exited lane): the process stops with the kernel's name.
//
// Even blocks run their warps and lanes in ascending order, odd blocks in descending order, so
// that a missing barrier shows whichever thread writes what another reads.
//
// A fiber is started once (ucontext) and then lives on for every later block and launch of
// its host thread, running the current kernel in a loop; switches use _setjmp / _longjmp,
// which save no signal mask and so cost no system call (build with _FORTIFY_SOURCE off: its
// longjmp check refuses jumps between stacks).

#include "device.h"
#include "runtime.h"

#include <setjmp.h>
#include <ucontext.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>

thread_local uint3 threadIdx;
thread_local uint3 blockIdx;
thread_local dim3 blockDim;
thread_local dim3 gridDim;

namespace emu {
namespace {

std::map<std::string, Thunk> &registry() {
    static std::map<std::string, Thunk> kernels;
    return kernels;
}

enum class State { Runnable, AtBlockBarrier, AtWarpBarrier, Done };

// The most threads in a block, as on NVIDIA GPUs.
constexpr std::size_t MAX_THREADS = 1024;
// Each fiber's stack; kernels are leaf code with small frames.
constexpr std::size_t STACK_BYTES = 64 * 1024;

struct Fiber {
    std::unique_ptr<char[]> stack;  // null until the fiber is started
    jmp_buf resume_point;           // where it waits
    void *asan_fake_stack = nullptr;  // AddressSanitizer's record of it while it waits
    State state;
    uint3 index;                    // threadIdx of this fiber
    unsigned long long offered;     // what it offers at a warp shuffle,
    unsigned int source_lane;       // the lane it reads from,
    unsigned long long received;    // and what it got
};

// The scheduler of this host thread and the launch it runs.
struct Block {
    Fiber fibers[MAX_THREADS];
    std::size_t threads = 0;     // fibers in use: the launch's block size
    jmp_buf scheduler;           // where the running fiber returns to
    void *asan_fake_stack = nullptr;      // AddressSanitizer's record of the scheduler's stack
    const void *scheduler_stack = nullptr;  // while a fiber runs,
    std::size_t scheduler_stack_bytes = 0;  // and its extent
    Fiber *current = nullptr;    // the fiber now running, or none
    Thunk thunk = nullptr;
    void **params = nullptr;
    const std::string *name = nullptr;
};
thread_local std::unique_ptr<Block> block_ptr;
Block &block() {
    if (!block_ptr) block_ptr.reset(new Block);
    return *block_ptr;
}

[[noreturn]] void fail(const char *what) {
    const std::string *name = block_ptr ? block_ptr->name : nullptr;
    std::fprintf(stderr, "CUDA emulator: kernel %s, block (%u, %u, %u): %s\n",
                 name ? name->c_str() : "?", blockIdx.x, blockIdx.y, blockIdx.z, what);
    std::abort();
}

// AddressSanitizer (`build --asan`) must be told of every switch of stacks: `leaving` before
// one, naming the stack it goes to, `arrived` after it, which learns the stack it came from.
// Both are nothing in a plain build.
void leaving(void **fake_stack, const void *to, std::size_t to_bytes) {
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_start_switch_fiber(fake_stack, to, to_bytes);
#else
    (void)fake_stack, (void)to, (void)to_bytes;
#endif
}
void arrived(void *fake_stack, const void **from, std::size_t *from_bytes) {
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_finish_switch_fiber(fake_stack, from, from_bytes);
#else
    (void)fake_stack, (void)from, (void)from_bytes;
#endif
}

// Suspends the running fiber in `state` and returns to the scheduler.
void wait_in(State state) {
    Block &b = block();
    Fiber *f = b.current;
    if (!f) fail("a barrier or shuffle outside a kernel");
    f->state = state;
    if (_setjmp(f->resume_point) == 0) {
        leaving(&f->asan_fake_stack, b.scheduler_stack, b.scheduler_stack_bytes);
        _longjmp(b.scheduler, 1);
    }
    arrived(f->asan_fake_stack, &b.scheduler_stack, &b.scheduler_stack_bytes);
}

// A fiber's whole life: the current kernel, for one thread of one block at a time.
void fiber_main() {
    Block &b = block();
    arrived(nullptr, &b.scheduler_stack, &b.scheduler_stack_bytes);
    for (;;) {
        b.thunk(b.params);
        wait_in(State::Done);
    }
}

// Runs fiber `f` until it next waits or finishes.
void resume(Fiber &f) {
    Block &b = block();
    threadIdx = f.index;
    b.current = &f;
    if (_setjmp(b.scheduler) == 0) {
        if (f.stack) {
            leaving(&b.asan_fake_stack, f.stack.get(), STACK_BYTES);
            _longjmp(f.resume_point, 1);
        }
        // First run: a new stack, entered with setcontext. The fiber comes back by jumping
        // to `b.scheduler`, so nothing of this frame needs saving.
        f.stack.reset(new char[STACK_BYTES]);
        leaving(&b.asan_fake_stack, f.stack.get(), STACK_BYTES);
        ucontext_t start;
        getcontext(&start);
        start.uc_stack.ss_sp = f.stack.get();
        start.uc_stack.ss_size = STACK_BYTES;
        start.uc_link = nullptr;
        makecontext(&start, fiber_main, 0);
        setcontext(&start);
    }
    arrived(b.asan_fake_stack, nullptr, nullptr);
    b.current = nullptr;
}

// Lets the live lanes of warp [begin, end) through a shuffle when all of them wait at one;
// false when they do not.
bool release_warp(std::size_t begin, std::size_t end) {
    Block &b = block();
    bool live = false;
    for (std::size_t t = begin; t < end; ++t) {
        State s = b.fibers[t].state;
        if (s == State::Done) continue;
        if (s != State::AtWarpBarrier) return false;
        live = true;
    }
    for (std::size_t t = begin; t < end; ++t) {
        Fiber &f = b.fibers[t];
        if (f.state == State::Done) continue;
        std::size_t src = begin + f.source_lane;
        if (src >= end || b.fibers[src].state == State::Done)
            fail("a warp shuffle reads a lane that has exited or does not exist");
        f.received = b.fibers[src].offered;
        f.state = State::Runnable;
    }
    return live;
}

// Runs warp [begin, end) until each of its lanes has finished or waits at `__syncthreads`
// (or the warp is stuck: the block's check then reports the deadlock).
void run_warp(std::size_t begin, std::size_t end, bool reversed) {
    Block &b = block();
    do {
        for (std::size_t k = begin; k < end; ++k) {
            Fiber &f = b.fibers[reversed ? begin + end - 1 - k : k];
            if (f.state == State::Runnable) resume(f);
        }
    } while (release_warp(begin, end));
}

// Lets the block through `__syncthreads` when every live thread waits there; false if not
// (also when none is live).
bool release_block() {
    Block &b = block();
    bool live = false;
    for (std::size_t t = 0; t < b.threads; ++t) {
        State s = b.fibers[t].state;
        if (s == State::Done) continue;
        if (s != State::AtBlockBarrier) return false;
        live = true;
    }
    for (std::size_t t = 0; t < b.threads; ++t)
        if (b.fibers[t].state != State::Done) b.fibers[t].state = State::Runnable;
    return live;
}

// Runs the block warp by warp, each up to the next `__syncthreads`, until all have finished.
void run_block(bool reversed) {
    Block &b = block();
    std::size_t warps = (b.threads + 31) / 32;
    for (std::size_t t = 0; t < b.threads; ++t) b.fibers[t].state = State::Runnable;
    do {
        for (std::size_t k = 0; k < warps; ++k) {
            std::size_t w = reversed ? warps - 1 - k : k;
            std::size_t end = 32 * w + 32 < b.threads ? 32 * w + 32 : b.threads;
            run_warp(32 * w, end, reversed);
        }
    } while (release_block());
    for (std::size_t t = 0; t < b.threads; ++t)
        if (b.fibers[t].state != State::Done)
            fail("deadlock: some threads wait at a barrier that others never reach");
}

}  // namespace

Registration::Registration(const char *name, Thunk thunk) { registry()[name] = thunk; }

Thunk find_kernel(const std::string &name) {
    auto it = registry().find(name);
    return it == registry().end() ? nullptr : it->second;
}

void launch(const std::string &name, Thunk thunk, void **params, Extent grid, Extent dims) {
    Block &b = block();
    std::size_t threads = (std::size_t)dims.x * dims.y * dims.z;
    if (threads == 0 || threads > MAX_THREADS) fail("a block of no thread or of more than 1024");
    b.threads = threads;
    for (std::size_t t = 0; t < threads; ++t) {
        unsigned int i = (unsigned int)t;
        b.fibers[t].index = {i % dims.x, i / dims.x % dims.y, i / (dims.x * dims.y)};
    }
    b.thunk = thunk;
    b.params = params;
    b.name = &name;
    blockDim = {dims.x, dims.y, dims.z};
    gridDim = {grid.x, grid.y, grid.z};
    std::size_t count = 0;
    for (unsigned int z = 0; z < grid.z; ++z)
        for (unsigned int y = 0; y < grid.y; ++y)
            for (unsigned int x = 0; x < grid.x; ++x) {
                blockIdx = {x, y, z};
                run_block(count++ % 2 == 1);
            }
    b.name = nullptr;
}

unsigned long long warp_exchange(unsigned long long bits, unsigned int src_lane) {
    Fiber *f = block().current;
    if (f) {
        f->offered = bits;
        f->source_lane = src_lane;
    }
    wait_in(State::AtWarpBarrier);
    return f->received;
}

void block_barrier() { wait_in(State::AtBlockBarrier); }

}  // namespace emu
