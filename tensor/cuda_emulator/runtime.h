// runtime.h: the emulator's kernel registry and launcher (runtime.cpp), shared by the
// generated kernel files and the driver (driver.cpp).

#pragma once

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

namespace emu {

// A kernel's host build, called once per GPU thread with the launch's parameter array (what
// cuLaunchKernel's `kernelParams` points to: one pointer per argument).
using Thunk = void (*)(void **params);

// Registers `thunk` under the kernel's name; the generated files do it at load time.
struct Registration {
    Registration(const char *name, Thunk thunk);
};

// The host build of kernel `name`, or nullptr.
Thunk find_kernel(const std::string &name);

struct Extent {
    unsigned int x, y, z;
};

// Runs `thunk` for every thread of every block, block after block, and returns when all have
// finished. Exits the process with a message on a deadlock (a barrier some live thread of the
// block never reaches), naming `name`.
void launch(const std::string &name, Thunk thunk, void **params, Extent grid, Extent block);

// Calls `f` with its arguments read from `params`, as the driver hands them to kernels.
template <typename... Args, std::size_t... I>
void call_with(void (*f)(Args...), void **params, std::index_sequence<I...>) {
    f(*static_cast<std::remove_reference_t<Args> *>(params[I])...);
}
template <typename... Args>
void call(void (*f)(Args...), void **params) {
    call_with(f, params, std::index_sequence_for<Args...>{});
}

}  // namespace emu

// One line per kernel in the generated files: registers a thunk that unpacks the parameters.
#define EMU_KERNEL(name)                                                                  \
    static emu::Registration emu_registration_##name(                                     \
        #name, [](void **params) { emu::call(name, params); });
