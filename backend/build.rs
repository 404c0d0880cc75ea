//! Links libtorch so the binary finds it at run time and keeps its CUDA library.
//!
//! torch-sys does not set a RUNPATH, and the linker drops `libtorch_cuda.so` as unneeded unless told
//! otherwise, which makes `tch::Cuda::is_available()` false even on a GPU machine (tch-rs #907, #980).

fn main() {
    if let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath={lib_dir}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
    }
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
}
