//! Links the page's own wasm (feature `split`, Trunk's build) with `--emit-relocs`: scripts/split-page.sh,
//! Trunk's post-build hook, needs the linker's relocations to cut the wasm at its split points.
//!
//! Only there: the component tests' debug build links the same binary without the split feature, and
//! rust-lld has crashed linking that debug wasm (DWARF and all) with `--emit-relocs` (CI, 2026-12-07).

fn main() {
    let splitting = std::env::var_os("CARGO_FEATURE_SPLIT").is_some();
    let for_wasm = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|arch| arch == "wasm32");
    if splitting && for_wasm {
        println!("cargo:rustc-link-arg-bins=--emit-relocs");
    }
}
