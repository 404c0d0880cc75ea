//! The `transfer-studio` binary: parses the command line and hands over to [`backend::cli`].

fn main() -> anyhow::Result<()> {
    backend::cli::main()
}
