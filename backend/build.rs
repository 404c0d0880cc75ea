//! Links libtorch so the binary finds it at run time and keeps its CUDA library, and compiles the
//! small C++ shim (`csrc/torch_extras.cpp`) for the libtorch calls tch does not expose.
//!
//! torch-sys does not set a RUNPATH, and the linker drops `libtorch_cuda.so` as unneeded unless told
//! otherwise, which makes `tch::Cuda::is_available()` false even on a GPU machine (tch-rs #907, #980).

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-changed=csrc/torch_extras.cpp");
    let lib_dir = std::env::var("DEP_TCH_LIBTORCH_LIB").expect("torch-sys names libtorch's lib folder");
    // The tests crate shares this script for the link arguments; the shim reaches it through the library.
    if std::env::var("CARGO_PKG_NAME").as_deref() == Ok("transfer-studio") {
        compile_shim(&lib_dir);
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath={lib_dir}");
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
}

fn compile_shim(lib_dir: &str) {
    // libtorch (and the PyPI wheel's torch/) keeps its headers next to lib/.
    let include = Path::new(lib_dir).parent().expect("lib folder has a parent").join("include");
    cc::Build::new()
        .cpp(true)
        .file("csrc/torch_extras.cpp")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .warnings(false)
        .compile("torch_extras");
}
