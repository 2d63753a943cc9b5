//! Every CUDA kernel source compiles with NVRTC for `compute_90` (the H100), and assembles for
//! `sm_90` without local memory, on any machine: NVRTC needs no GPU. Where `libnvrtc` cannot be
//! opened the tests print `SKIPPED` and pass, unless `PGM_REQUIRE_NVRTC=1` (set by `.ci/run`),
//! which turns the skip into a failure.
#![cfg(feature = "cuda")]

use tensor::cuda::kernels::{self, Source};
use tensor::ErrorKind;

/// False (after saying why) when NVRTC is missing and the run tolerates that.
fn nvrtc_or_skip(test: &str) -> bool {
    if kernels::nvrtc_available() {
        return true;
    }
    if std::env::var("PGM_REQUIRE_NVRTC").as_deref() == Ok("1") {
        panic!("{test}: PGM_REQUIRE_NVRTC=1 but libnvrtc cannot be loaded (check LD_LIBRARY_PATH)");
    }
    eprintln!("SKIPPED {test}: NVRTC not found (libnvrtc.so.13 is not on the loader's path)");
    false
}

#[test]
fn every_kernel_source_compiles_for_compute_90() {
    if !nvrtc_or_skip("every_kernel_source_compiles_for_compute_90") {
        return;
    }
    for source in Source::ALL {
        let ptx = kernels::compile_source(source, "compute_90")
            .unwrap_or_else(|e| panic!("{}: {e}", source.file_name()));
        let text = ptx.to_src();
        assert!(
            text.contains(".target sm_90"),
            "{}: PTX for another target",
            source.file_name()
        );
        assert!(
            text.contains(".entry"),
            "{}: no kernels",
            source.file_name()
        );
    }
}

/// The number in front of `what` in a line of the assembler's report: 32 for " registers" in
/// "Used 32 registers, used 0 barriers", 112 for " bytes stack frame" in "112 bytes stack frame".
fn count_of(line: &str, what: &str) -> Option<u32> {
    let before = &line[..line.find(what)?];
    before.split_whitespace().last()?.parse().ok()
}

#[test]
fn count_of_reads_the_assembler_report() {
    let frame =
        "ptxas         .     112 bytes stack frame, 8 bytes spill stores, 8 bytes spill loads";
    assert_eq!(count_of(frame, " bytes stack frame"), Some(112));
    assert_eq!(count_of(frame, " bytes spill stores"), Some(8));
    let used = "ptxas info    : Used 38 registers, used 1 barriers, 128 bytes smem";
    assert_eq!(count_of(used, " registers"), Some(38));
    assert_eq!(count_of(used, " bytes spill stores"), None);
}

/// Every kernel also goes through the assembler for sm_90, as the driver takes it when it loads
/// the PTX on an H100 / H200, and uses no local memory: no spilled register, no stack frame
/// (an array indexed at run time, such as a `Strided` layout walked in a loop bounded by its
/// rank, would need one). Prints per source the kernel count and the most registers any of its
/// kernels uses.
#[test]
fn every_kernel_assembles_for_sm_90_without_local_memory() {
    if !nvrtc_or_skip("every_kernel_assembles_for_sm_90_without_local_memory") {
        return;
    }
    for source in Source::ALL {
        let name = source.file_name();
        let report = kernels::assembler_report(source, "sm_90").unwrap_or_else(|e| panic!("{e}"));
        let entries = kernels::compile_source(source, "compute_90")
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .to_src()
            .matches(".entry ")
            .count();
        let assembled = report.matches("Compiling entry function").count();
        assert_eq!(
            assembled, entries,
            "{name}: {assembled} of {entries} kernels assembled"
        );
        let mut registers = 0;
        for line in report.lines() {
            if let Some(spilled) = count_of(line, " bytes spill stores") {
                assert_eq!(spilled, 0, "{name} spills registers: {line}");
            }
            if let Some(stack) = count_of(line, " bytes stack frame") {
                assert_eq!(stack, 0, "{name} uses local memory: {line}");
            }
            registers = registers.max(count_of(line, " registers").unwrap_or(0));
        }
        assert!(
            registers > 0,
            "{name}: no register counts in the report:\n{report}"
        );
        eprintln!("{name}: {entries} kernels, at most {registers} registers");
    }
}

/// The entry points the Rust launchers ask for by name are in the PTX.
#[test]
fn launched_kernel_names_are_exported() {
    if !nvrtc_or_skip("launched_kernel_names_are_exported") {
        return;
    }
    let expect: &[(Source, &[&str])] = &[
        (
            Source::Elementwise,
            &[
                "unary_f32",
                "unary_bf16",
                "unary_backward_f32",
                "affine_bf16",
                "binary_f32",
                "where_bf16",
                "cmp_u32",
                "cmp_u8",
            ],
        ),
        (
            Source::Cast,
            &[
                "copy_strided_u8",
                "copy_strided_f64",
                "copy_into_strided_f32",
                "copy_into_strided_u8",
                "cast_f32_bf16",
                "cast_u8_f32",
            ],
        ),
        (
            Source::Reduce,
            &[
                "reduce_last_f32",
                "argmax_last_bf16",
                "reduce_mid_partials_bf16",
                "reduce_mid_finish_f32",
                "reduce_last_partials_f32",
                "reduce_last_finish_bf16",
            ],
        ),
        (Source::Softmax, &["softmax_f32", "softmax_backward_bf16"]),
        (
            Source::LayerNorm,
            &[
                "norm_affine_f32",
                "norm_affine_backward_dx_bf16",
                "norm_affine_backward_partials_f32",
                "norm_affine_backward_sums_bf16",
            ],
        ),
        (Source::Rope, &["rope_f32", "rope_bf16"]),
        (
            Source::Index,
            &[
                "index_select_u8",
                "gather_f32",
                "index_add_f64",
                "scatter_add_f32",
            ],
        ),
        (Source::Attention, &["masked_softmax_f32"]),
        (
            Source::CrossEntropy,
            &["cross_entropy_bf16", "cross_entropy_backward_f32"],
        ),
        (
            Source::Sample,
            &[
                "gumbel_argmax_f32",
                "gumbel_argmax_bf16",
                "dropout_mask_bf16",
            ],
        ),
    ];
    for (source, names) in expect {
        let ptx = kernels::compile_source(*source, "compute_90")
            .unwrap()
            .to_src();
        for name in *names {
            assert!(
                ptx.contains(&format!(".entry {name}(")),
                "{} lacks kernel {name}",
                source.file_name()
            );
        }
    }
}

#[test]
fn a_broken_source_fails_with_the_compiler_log() {
    if !nvrtc_or_skip("a_broken_source_fails_with_the_compiler_log") {
        return;
    }
    let broken = r#"extern "C" __global__ void oops(float *x) { x[0] = undeclared_name; }"#;
    let err = kernels::compile("broken.cu", broken, "compute_90").unwrap_err();
    let ErrorKind::Cuda(msg) = &err.kind else {
        panic!("expected a CUDA error, got {err}");
    };
    assert!(msg.contains("broken.cu does not compile"), "{msg}");
    assert!(msg.contains("undeclared_name"), "log missing from: {msg}");
}
