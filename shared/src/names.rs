//! Names of the things the studio keeps as files and folders: datasets, their versions and weights files.
//! Every route, the CLI and the page check names here, so a name that one of them accepts is one that
//! none of the others (nor the studio's own files) can be confused by.
//!
//! A dataset is a folder of the data folder, beside the studio's own files (`studio.db` and SQLite's
//! `-journal`, `-wal` and `-shm` beside it, `runs/`, `weights/`) and derived entries named from a
//! dataset (`digits@v2`, a version). A new dataset's name may therefore not be one of those names,
//! compared without regard to case (a case-insensitive file system makes `Runs` the same folder as
//! `runs`), nor hold the character that names derived entries.

use crate::limits::MAX_NAME_LEN;

/// Names in the data folder that belong to the studio, lower case; a dataset may not take one, in any case.
pub const RESERVED_NAMES: &[&str] = &["runs", "weights", "caches", "sweeps", "jobs", "logs", "tmp"];
/// Prefixes of names that belong to the studio, lower case: its database and SQLite's files beside it
/// (`studio.db-journal`, `studio.db-wal`, `studio.db-shm`), and anything else it may name `studio.*`.
pub const RESERVED_PREFIXES: &[&str] = &["studio."];
/// The character that joins a dataset's name to the name of something derived from it: a version is
/// `<dataset>@v<n>`. Dataset names never contain it, so a derived name can never be a dataset's.
pub const DERIVED_SEPARATOR: char = '@';

/// Checks that `name` is a plain file or folder name: it can never point outside its folder.
/// The error completes a sentence that starts with what the name is for ("dataset must not be empty").
pub fn check_file_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("must be at most {MAX_NAME_LEN} bytes long, got {}", name.len()));
    }
    if name.starts_with('.') || name.contains(['/', '\\', '\0']) || name.chars().any(char::is_control) {
        return Err(format!(
            "must be a plain name inside its folder (no path separators, no leading dot), got \"{name}\""
        ));
    }
    Ok(())
}

/// Checks the name of a new dataset (an upload, a folder the CLI makes): a plain name that is not one of
/// the studio's own ([`RESERVED_NAMES`], [`RESERVED_PREFIXES`], in any case) and has no
/// [`DERIVED_SEPARATOR`]. The error completes a sentence that starts with "name".
pub fn check_dataset_name(name: &str) -> Result<(), String> {
    check_file_name(name)?;
    let lower = name.to_ascii_lowercase();
    if RESERVED_NAMES.contains(&lower.as_str()) || RESERVED_PREFIXES.iter().any(|prefix| lower.starts_with(prefix)) {
        return Err(format!("\"{name}\" is taken by the studio's own files; choose another name"));
    }
    if name.contains(DERIVED_SEPARATOR) {
        return Err(format!(
            "must not contain \"{DERIVED_SEPARATOR}\", which names a dataset's versions (digits{DERIVED_SEPARATOR}v2), \
             got \"{name}\""
        ));
    }
    Ok(())
}

/// Checks a name that refers to a dataset to read (a run's dataset, a health check): a dataset's name
/// ([`check_dataset_name`]) or one of its versions, `<dataset>@v<n>`.
pub fn check_dataset_reference(name: &str) -> Result<(), String> {
    match parse_version(name) {
        Some((dataset, _)) => check_dataset_name(dataset),
        None => check_dataset_name(name),
    }
}

/// The dataset and number of a version's name: `cifar@v2` is `("cifar", 2)`; `None` for any other name
/// (`cifar@v0`, `cifar@v01`, `cifar@v`).
pub fn parse_version(name: &str) -> Option<(&str, u32)> {
    let (dataset, number) = name.rsplit_once("@v")?;
    let plain = !dataset.is_empty() && !number.is_empty() && !number.starts_with('0');
    let number = number.bytes().all(|b| b.is_ascii_digit()).then(|| number.parse().ok()).flatten()?;
    plain.then_some((dataset, number))
}

/// Extensions of the weights files the studio reads.
pub const WEIGHTS_EXTENSIONS: &[&str] = &[".safetensors", ".pth", ".pt"];

/// Checks the name of a weights file: a plain file name ending in one of [`WEIGHTS_EXTENSIONS`].
pub fn check_weights_name(name: &str) -> Result<(), String> {
    check_file_name(name)?;
    if !WEIGHTS_EXTENSIONS.iter().any(|extension| name.ends_with(extension)) {
        return Err(format!("\"{name}\" must end in .safetensors, .pth or .pt"));
    }
    Ok(())
}

/// Whether `a` and `b` name the same entry on a case-insensitive file system.
pub fn same_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_studios_own_names_are_refused_for_datasets_in_any_case() {
        for name in [
            "studio.db",
            "studio.db-journal",
            "STUDIO.DB-WAL",
            "studio.db-shm",
            "Studio.later",
            "runs",
            "Weights",
            "CACHES",
            "digits@v1",
            "a@b",
            ".versions",
            "",
        ] {
            assert!(check_dataset_name(name).is_err(), "{name} was accepted");
        }
        for name in ["digits", "studio", "my runs", "weights-2024", "cifar10", "dé-jà"] {
            assert_eq!(check_dataset_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn a_reference_is_a_dataset_or_one_of_its_versions() {
        for name in ["digits", "digits@v1", "digits@v12"] {
            assert_eq!(check_dataset_reference(name), Ok(()), "{name}");
        }
        for name in ["digits@v0", "digits@v", "digits@vx", "runs@v1", "studio.db-journal", "a@b@v1"] {
            assert!(check_dataset_reference(name).is_err(), "{name} was accepted");
        }
    }

    #[test]
    fn version_names_parse_only_in_their_one_spelling() {
        assert_eq!(parse_version("cifar@v2"), Some(("cifar", 2)));
        assert_eq!(parse_version("my@vset@v10"), Some(("my@vset", 10)));
        for name in ["cifar", "cifar@v0", "cifar@v01", "cifar@v+1", "@v1", "cifar@vx", "cifar@v", "c@v99999999999"] {
            assert_eq!(parse_version(name), None, "{name}");
        }
    }

    #[test]
    fn a_name_over_the_limit_says_how_long_it_is() {
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert!(check_file_name(&long).unwrap_err().contains("129"));
    }
}
