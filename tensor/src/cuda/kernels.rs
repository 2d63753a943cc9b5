//! The CUDA C kernel sources and their run-time compilation with NVRTC.
//!
//! Each source in `kernels/*.cu` is one module: the shared header `kernels/common.cuh` is put
//! in front of it and NVRTC compiles the result to PTX for the device's own architecture
//! (`compute_XY` from the context's compute capability). A module is compiled and loaded once
//! per process and GPU; its functions are cached by name. Nothing is compiled at build time, so
//! `cargo build --features cuda` needs no CUDA toolkit.
//!
//! # Where the CUDA headers come from
//!
//! The kernels include `cuda_bf16.h` and `cuda_fp16.h`, which NVRTC 13 does not build in.
//! [`include_paths`] looks, in order, at
//! 1. the `PGM_CUDA_INCLUDE` environment variable (one folder, or several joined by `:`);
//! 2. `$CUDA_HOME/include`, `$CUDA_PATH/include`, `/usr/local/cuda/include`;
//! 3. `nvidia/cu13/include` under each folder of `PYTHONPATH` and under `.ci/.nvrtc` (where
//!    `.ci/run` installs the `nvidia-cuda-runtime` pip package),
//!
//! and keeps the folders that hold `cuda_bf16.h`. `libnvrtc.so.13` itself is found by the
//! dynamic loader (`LD_LIBRARY_PATH`).

use crate::{Error, ErrorKind, Result};
use cudarc::driver::{CudaFunction, CudaModule};
use cudarc::nvrtc::{CompileError, CompileOptions, Ptx};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The header every source starts with: `Strided`, float conversions, block reductions.
const COMMON: &str = include_str!("kernels/common.cuh");

/// One kernel source file, compiled as one module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    Elementwise,
    Cast,
    Reduce,
    Softmax,
    LayerNorm,
    Rope,
    Index,
    Attention,
    CrossEntropy,
    Sample,
    Residual,
}

impl Source {
    /// Every source, for tests that compile them all.
    pub const ALL: [Source; 11] = [
        Source::Elementwise,
        Source::Cast,
        Source::Reduce,
        Source::Softmax,
        Source::LayerNorm,
        Source::Rope,
        Source::Index,
        Source::Attention,
        Source::CrossEntropy,
        Source::Sample,
        Source::Residual,
    ];

    /// The file name, as in `tensor/src/cuda/kernels/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Source::Elementwise => "elementwise.cu",
            Source::Cast => "cast.cu",
            Source::Reduce => "reduce.cu",
            Source::Softmax => "softmax.cu",
            Source::LayerNorm => "layernorm.cu",
            Source::Rope => "rope.cu",
            Source::Index => "index.cu",
            Source::Attention => "attention.cu",
            Source::CrossEntropy => "cross_entropy.cu",
            Source::Sample => "sample.cu",
            Source::Residual => "residual.cu",
        }
    }

    /// The file's text (without the common header).
    pub fn code(self) -> &'static str {
        match self {
            Source::Elementwise => include_str!("kernels/elementwise.cu"),
            Source::Cast => include_str!("kernels/cast.cu"),
            Source::Reduce => include_str!("kernels/reduce.cu"),
            Source::Softmax => include_str!("kernels/softmax.cu"),
            Source::LayerNorm => include_str!("kernels/layernorm.cu"),
            Source::Rope => include_str!("kernels/rope.cu"),
            Source::Index => include_str!("kernels/index.cu"),
            Source::Attention => include_str!("kernels/attention.cu"),
            Source::CrossEntropy => include_str!("kernels/cross_entropy.cu"),
            Source::Sample => include_str!("kernels/sample.cu"),
            Source::Residual => include_str!("kernels/residual.cu"),
        }
    }
}

fn nvrtc_error(msg: impl Into<String>) -> Error {
    Error {
        op: "nvrtc",
        kind: ErrorKind::Cuda(msg.into()),
    }
}

/// True when `libnvrtc` can be opened (it must be on the loader's path, e.g. `LD_LIBRARY_PATH`).
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to open the library; cudarc would panic on first use without it.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// The folders to pass to NVRTC as include paths (see the module docs for the search order).
pub fn include_paths() -> Vec<String> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(v) = std::env::var("PGM_CUDA_INCLUDE") {
        candidates.extend(std::env::split_paths(&v));
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Ok(v) = std::env::var(var) {
            candidates.push(Path::new(&v).join("include"));
        }
    }
    candidates.push(PathBuf::from("/usr/local/cuda/include"));
    let pip = |root: &Path| root.join("nvidia").join("cu13").join("include");
    if let Ok(v) = std::env::var("PYTHONPATH") {
        candidates.extend(std::env::split_paths(&v).map(|p| pip(&p)));
    }
    // The CI folder, relative to this crate's manifest (tensor/) and to the working directory.
    candidates.push(pip(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/.nvrtc")
    ));
    candidates.push(pip(Path::new(".ci/.nvrtc")));
    let mut out: Vec<String> = Vec::new();
    for c in candidates {
        if c.join("cuda_bf16.h").is_file() {
            let s = c.to_string_lossy().into_owned();
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

/// The include paths NVRTC needs, or an error when NVRTC or the CUDA headers are missing.
fn nvrtc_includes() -> Result<Vec<String>> {
    if !nvrtc_available() {
        return Err(nvrtc_error(
            "libnvrtc not found: install the CUDA toolkit or `pip install nvidia-cuda-nvrtc` \
             and put its lib folder on LD_LIBRARY_PATH",
        ));
    }
    let includes = include_paths();
    if includes.is_empty() {
        return Err(nvrtc_error(
            "cuda_bf16.h not found: set PGM_CUDA_INCLUDE to a CUDA include folder",
        ));
    }
    Ok(includes)
}

/// Compiles one module's text (the common header is added in front) to PTX for `arch`, e.g.
/// `"compute_90"`. Errors: NVRTC missing, or the compiler's log when the source does not compile.
pub fn compile(name: &str, code: &str, arch: &'static str) -> Result<Ptx> {
    let includes = nvrtc_includes()?;
    let src = format!("{COMMON}\n{code}");
    let opts = CompileOptions {
        arch: Some(arch),
        include_paths: includes,
        name: Some(name.to_string()),
        options: vec!["--std=c++17".into()],
        ..Default::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(src, opts).map_err(|e| match e {
        CompileError::CompileError { log, .. } => nvrtc_error(format!(
            "{name} does not compile:\n{}",
            log.to_string_lossy()
        )),
        other => nvrtc_error(format!("{name}: {other:?}")),
    })
}

/// Compiles one of our sources to PTX for `arch`.
pub fn compile_source(source: Source, arch: &'static str) -> Result<Ptx> {
    compile(source.file_name(), source.code(), arch)
}

/// Compiles one of our sources on to machine code for `arch` (e.g. `"sm_90"`), the step the
/// driver takes when it loads the PTX on a GPU, and returns the assembler's report: for every
/// kernel its registers, stack frame, spilled bytes and shared memory. It needs no GPU, so CI
/// catches what only that step would reject.
pub fn assembler_report(source: Source, arch: &str) -> Result<String> {
    use cudarc::nvrtc::result;
    use std::ffi::{CStr, CString};
    let file = source.file_name();
    let includes = nvrtc_includes()?;
    let failed = |e: &dyn std::fmt::Debug| nvrtc_error(format!("{file}: {e:?}"));
    let src = CString::new(format!("{COMMON}\n{}", source.code())).map_err(|e| failed(&e))?;
    let name = CString::new(file).map_err(|e| failed(&e))?;
    let mut options = vec![
        format!("--gpu-architecture={arch}"),
        "--std=c++17".to_string(),
        "--ptxas-options=-v".to_string(),
    ];
    options.extend(includes.iter().map(|p| format!("--include-path={p}")));
    let program = result::create_program(&src, Some(&name)).map_err(|e| failed(&e))?;
    // SAFETY: `program` is a live NVRTC program, destroyed exactly once below; the log is a
    // NUL-terminated string that NVRTC wrote into a buffer of the size it asked for.
    let (compiled, log) = unsafe {
        let compiled = result::compile_program(program, &options);
        let log = result::get_program_log(program)
            .map(|raw| CStr::from_ptr(raw.as_ptr()).to_string_lossy().into_owned());
        result::destroy_program(program).map_err(|e| failed(&e))?;
        (compiled, log.map_err(|e| failed(&e))?)
    };
    match compiled {
        Ok(()) => Ok(log),
        Err(_) => Err(nvrtc_error(format!(
            "{file} does not compile and assemble for {arch}:\n{log}"
        ))),
    }
}

/// `compute_XY` for a compute capability, as a `'static` string (NVRTC's options want one);
/// each distinct architecture is leaked once per process.
fn arch_name(major: i32, minor: i32) -> &'static str {
    static NAMES: OnceLock<Mutex<HashMap<(i32, i32), &'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    names
        .entry((major, minor))
        .or_insert_with(|| Box::leak(format!("compute_{major}{minor}").into_boxed_str()))
}

/// The kernel `name` of `source` on GPU `ordinal`, compiling and loading the module on first
/// use. Modules are cached per (GPU, source) and functions per (GPU, name).
pub fn function(ordinal: usize, source: Source, name: &str) -> Result<CudaFunction> {
    type Cache = (
        HashMap<(usize, Source), Arc<CudaModule>>,
        HashMap<(usize, String), CudaFunction>,
    );
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let (modules, functions) = &mut *cache;
    if let Some(f) = functions.get(&(ordinal, name.to_string())) {
        return Ok(f.clone());
    }
    let module = match modules.get(&(ordinal, source)) {
        Some(m) => m.clone(),
        None => {
            let ctx = super::stream(ordinal)?.context().clone();
            let (major, minor) = ctx
                .compute_capability()
                .map_err(|e| nvrtc_error(format!("cuda:{ordinal}: {e}")))?;
            let ptx = compile_source(source, arch_name(major, minor))?;
            let m = ctx.load_module(ptx).map_err(|e| {
                nvrtc_error(format!(
                    "loading {} on cuda:{ordinal}: {e}",
                    source.file_name()
                ))
            })?;
            modules.insert((ordinal, source), m.clone());
            m
        }
    };
    let f = module
        .load_function(name)
        .map_err(|e| nvrtc_error(format!("{name} in {}: {e}", source.file_name())))?;
    functions.insert((ordinal, name.to_string()), f.clone());
    Ok(f)
}
