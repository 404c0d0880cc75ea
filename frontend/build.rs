//! Links the page's own wasm (feature `split`, Trunk's build) with `--emit-relocs`: scripts/split-page.sh,
//! Trunk's post-build hook, needs the linker's relocations to cut the wasm at its split points.
//!
//! Only there: the component tests' build (profile `page-tests`) links the same binary without the split
//! feature. While every wasm32 link had the flag, rust-lld crashed on the tests' debug link in CI
//! (2026-12-07; not reproduced here, so the flag is the suspect, not a proven cause), and nothing but the
//! splitter needs it.

fn main() {
    let splitting = std::env::var_os("CARGO_FEATURE_SPLIT").is_some();
    let for_wasm = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|arch| arch == "wasm32");
    if splitting && for_wasm {
        println!("cargo:rustc-link-arg-bins=--emit-relocs");
    }
}
