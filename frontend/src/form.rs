//! The training form's fields as typed, and their check against the shared rules.
//!
//! Fields are kept as the text in each box so that a half-typed number ("0.") is not rewritten
//! under the cursor. [`TrainForm::to_config`] parses them and then applies
//! [`TrainConfig::problems`], the same rules the server uses to refuse a run.

use shared::{defaults, ConfigError, Normalization, TrainConfig};

/// The training form as the person has filled it in.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainForm {
    /// Dataset folder name; empty until the dataset list has loaded.
    pub dataset: String,
    /// Text of the epochs box.
    pub epochs: String,
    /// Text of the batch size box.
    pub batch_size: String,
    /// Text of the learning rate box.
    pub lr: String,
    /// Text of the momentum box.
    pub momentum: String,
    /// Text of the seed box.
    pub seed: String,
    /// Text of the input size box.
    pub input_size: String,
    /// Pixel normalisation.
    pub normalization: Normalization,
    /// `"none"` or a weights file name.
    pub weights: String,
}

impl Default for TrainForm {
    fn default() -> Self {
        TrainForm {
            dataset: String::new(),
            epochs: defaults::EPOCHS.to_string(),
            batch_size: defaults::BATCH_SIZE.to_string(),
            lr: defaults::LR.to_string(),
            momentum: defaults::MOMENTUM.to_string(),
            seed: defaults::SEED.to_string(),
            input_size: defaults::INPUT_SIZE.to_string(),
            normalization: Normalization::default(),
            weights: defaults::WEIGHTS_NONE.to_string(),
        }
    }
}

impl TrainForm {
    /// The configuration these fields describe, or every problem with them, one per field.
    pub fn to_config(&self) -> Result<TrainConfig, Vec<ConfigError>> {
        let mut problems = Vec::new();
        let mut config = TrainConfig::for_dataset(self.dataset.trim());
        config.epochs = parse_whole("epochs", &self.epochs, &mut problems).unwrap_or(defaults::EPOCHS);
        config.batch_size =
            parse_whole("batch_size", &self.batch_size, &mut problems).unwrap_or(defaults::BATCH_SIZE);
        config.lr = parse_number("lr", &self.lr, &mut problems).unwrap_or(defaults::LR);
        config.momentum =
            parse_number("momentum", &self.momentum, &mut problems).unwrap_or(defaults::MOMENTUM);
        config.seed = parse_whole("seed", &self.seed, &mut problems).unwrap_or(defaults::SEED);
        config.input_size =
            parse_whole("input_size", &self.input_size, &mut problems).unwrap_or(defaults::INPUT_SIZE);
        config.normalization = self.normalization;
        config.weights = self.weights.clone();

        // A field that did not parse already has its message; the rules only judge the others.
        let unparsed: Vec<&str> = problems.iter().map(|p: &ConfigError| p.field).collect();
        let rule_breaks: Vec<ConfigError> =
            config.problems().into_iter().filter(|p| !unparsed.contains(&p.field)).collect();
        problems.extend(rule_breaks);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }
}

/// The message for `field` in a checked form, if it has one.
pub fn problem_for<'a>(checked: &'a Result<TrainConfig, Vec<ConfigError>>, field: &str) -> Option<&'a str> {
    checked.as_ref().err()?.iter().find(|p| p.field == field).map(|p| p.message.as_str())
}

fn parse_whole<T: std::str::FromStr>(
    field: &'static str,
    text: &str,
    problems: &mut Vec<ConfigError>,
) -> Option<T> {
    let parsed = text.trim().parse().ok();
    if parsed.is_none() {
        problems.push(ConfigError { field, message: not_a_number(field, "a whole number", text) });
    }
    parsed
}

fn parse_number(field: &'static str, text: &str, problems: &mut Vec<ConfigError>) -> Option<f64> {
    let parsed = text.trim().parse().ok();
    if parsed.is_none() {
        problems.push(ConfigError { field, message: not_a_number(field, "a number", text) });
    }
    parsed
}

fn not_a_number(field: &str, kind: &str, text: &str) -> String {
    match text.trim() {
        "" => format!("{field} must be {kind}"),
        text => format!("{field} must be {kind}, got \"{text}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled() -> TrainForm {
        TrainForm { dataset: "tiny".into(), ..TrainForm::default() }
    }

    #[test]
    fn the_defaults_make_the_seed_recipe() {
        assert_eq!(filled().to_config(), Ok(TrainConfig::for_dataset("tiny")));
    }

    #[test]
    fn an_empty_dataset_is_a_problem() {
        let checked = TrainForm::default().to_config();
        assert!(problem_for(&checked, "dataset").is_some());
    }

    #[test]
    fn text_that_is_not_a_number_names_its_field() {
        let form = TrainForm { epochs: "two".into(), lr: "".into(), ..filled() };
        let checked = form.to_config();
        assert_eq!(problem_for(&checked, "epochs"), Some("epochs must be a whole number, got \"two\""));
        assert_eq!(problem_for(&checked, "lr"), Some("lr must be a number"));
        assert_eq!(problem_for(&checked, "momentum"), None);
    }

    #[test]
    fn out_of_range_values_get_the_shared_rule_message() {
        let form = TrainForm { batch_size: "0".into(), momentum: "1".into(), ..filled() };
        let checked = form.to_config();
        assert_eq!(problem_for(&checked, "batch_size"), Some("batch_size must be between 1 and 4096, got 0"));
        assert!(problem_for(&checked, "momentum").unwrap().starts_with("momentum must be"));
        assert_eq!(checked.unwrap_err().len(), 2);
    }

    #[test]
    fn numbers_with_spaces_and_exponents_are_read() {
        let form = TrainForm { lr: " 1e-2 ".into(), input_size: "64".into(), ..filled() };
        let config = form.to_config().unwrap();
        assert_eq!(config.lr, 0.01);
        assert_eq!(config.input_size, 64);
    }
}
