//! The training form's fields as typed, their check against the shared rules, and the presets.
//!
//! Number fields are kept as the text in each box so that a half-typed number ("0.") is not
//! rewritten under the cursor. [`TrainForm::to_config`] parses them and then applies
//! [`TrainConfig::problems`], the same rules the server uses to refuse a run. A [`Preset`] fills
//! the form with a known recipe in one click.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use shared::fields::{Kind, Value};
use shared::{
    defaults, ConfigError, FineTuneMode, Normalization, Schedule, Surroundings, TrainConfig, WeightsEntry, FIELDS,
};

/// The training form as the person has filled it in: the text of every setting's control, keyed by the
/// setting's JSON name (see [`shared::FIELDS`]). Numbers are kept as typed, choices by their JSON name,
/// flags as `"true"`/`"false"`, and an empty optional box as `""`. It is saved in the browser as this
/// JSON (see [`crate::saved`]); a field missing from what was saved takes its default.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct TrainForm {
    texts: BTreeMap<&'static str, String>,
}

impl Default for TrainForm {
    fn default() -> Self {
        TrainForm::from_config(&TrainConfig::default())
    }
}

impl<'de> Deserialize<'de> for TrainForm {
    /// Reads a saved form: known fields only, each as text (flags and numbers saved by older pages as
    /// JSON values too). A choice that is not one of its options makes the whole text unreadable, so a
    /// form saved by another version is dropped rather than misread.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let saved = BTreeMap::<String, serde_json::Value>::deserialize(deserializer)?;
        let mut form = TrainForm::default();
        for field in &FIELDS {
            let text = match saved.get(field.name) {
                None => continue,
                Some(serde_json::Value::String(text)) => text.clone(),
                Some(serde_json::Value::Null) => String::new(),
                Some(other) => other.to_string(),
            };
            if let Kind::Choice(options) = field.kind {
                if !options().iter().any(|(name, _)| *name == text) {
                    return Err(serde::de::Error::custom(format!("{} is not a choice of {}", text, field.label)));
                }
            }
            form.set(field.name, text);
        }
        Ok(form)
    }
}

impl TrainForm {
    /// The form a first visit shows: the seed recipe, starting from ImageNet's weights.
    pub fn first_visit() -> Self {
        let mut pretrained = TrainForm::default();
        pretrained.set("weights", defaults::WEIGHTS_IMAGENET);
        Preset::SeedRecipe.applied(&pretrained)
    }

    /// Makes the chosen starting weights ones that can be had: when the chosen weights are not in
    /// `listed` or cannot be had (ImageNet's without network), the first weights file on the server,
    /// else random weights with every layer training (a frozen backbone needs pretrained weights).
    /// Returns whether it changed the form.
    pub fn with_usable_weights(&mut self, listed: &[WeightsEntry]) -> bool {
        let chosen = self.text("weights");
        let usable = |entry: &WeightsEntry| entry.unavailable.is_none();
        if chosen == defaults::WEIGHTS_NONE || listed.iter().any(|entry| entry.name == chosen && usable(entry)) {
            return false;
        }
        match listed.iter().find(|entry| entry.present) {
            Some(file) => self.set("weights", &file.name),
            None => {
                self.set("weights", defaults::WEIGHTS_NONE);
                self.set("mode", "full");
            }
        }
        true
    }

    /// The form showing `config`, every number written as Rust writes it.
    pub fn from_config(config: &TrainConfig) -> Self {
        let texts = FIELDS
            .iter()
            .map(|field| {
                let text = match (field.value)(config) {
                    Value::Name(name) => name,
                    Value::Choice(name) => name.to_string(),
                    Value::Flag(on) => on.to_string(),
                    Value::Whole(n) => n.map_or_else(String::new, |n| n.to_string()),
                    Value::Decimal(x) => x.map_or_else(String::new, |x| x.to_string()),
                };
                (field.name, text)
            })
            .collect();
        TrainForm { texts }
    }

    /// The text of the field named `name` (empty for a name that is not a field).
    pub fn text(&self, name: &str) -> &str {
        self.texts.get(name).map_or("", String::as_str)
    }

    /// Whether the flag named `name` is on.
    pub fn flag(&self, name: &str) -> bool {
        self.text(name) == "true"
    }

    /// Sets the text of the field named `name`; a name that is not a field is ignored.
    pub fn set(&mut self, name: &str, text: impl Into<String>) {
        if let Some(field) = FIELDS.iter().find(|f| f.name == name) {
            self.texts.insert(field.name, text.into());
        }
    }

    /// True when `field` applies to what the form describes in `around`. Only the choices decide when a
    /// setting applies, so this holds while a number box is half typed too.
    pub fn applies(&self, field: &shared::Field, around: &Surroundings) -> bool {
        let choices = FIELDS
            .iter()
            .filter(|f| matches!(f.kind, Kind::Choice(_)))
            .map(|f| (f.name.to_string(), serde_json::Value::from(self.text(f.name))))
            .collect();
        let config = serde_json::from_value(serde_json::Value::Object(choices)).unwrap_or_default();
        field.applies(&config, around)
    }

    /// The configuration these fields describe, or every problem with them, one per field. A box that
    /// does not hold a number says so with the field's label; the rest is judged by
    /// [`TrainConfig::problems`], the rules the server applies. A setting that does not apply to the
    /// configuration is never a problem, whatever its box holds.
    pub fn to_config(&self) -> Result<TrainConfig, Vec<ConfigError>> {
        let mut json = serde_json::Map::new();
        let mut unreadable = Vec::new();
        for field in &FIELDS {
            match read(field, self.text(field.name)) {
                Ok(value) => {
                    json.insert(field.name.to_string(), value);
                }
                Err(problem) => unreadable.push(problem),
            }
        }
        let config: TrainConfig = serde_json::from_value(serde_json::Value::Object(json)).map_err(|error| {
            vec![ConfigError { field: "dataset", message: format!("The form could not be read: {error}") }]
        })?;
        let applies = |name: &str| FIELDS.iter().any(|f| f.name == name && f.applies(&config, &Surroundings::ANY));
        unreadable.retain(|p| applies(p.field));
        let mut problems = unreadable.clone();
        problems.extend(config.problems().into_iter().filter(|p| !unreadable.iter().any(|u| u.field == p.field)));
        problems.sort_by_key(|p| FIELDS.iter().position(|f| f.name == p.field));
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }
}

/// The JSON value `text` stands for in `field`, or the problem with it.
fn read(field: &shared::Field, text: &str) -> Result<serde_json::Value, ConfigError> {
    let text = text.trim();
    let problem = |kind: &str| {
        let message = match text {
            "" => format!("{} must be {kind}", field.label),
            text => format!("{} must be {kind}, got \"{text}\"", field.label),
        };
        ConfigError { field: field.name, message }
    };
    match field.kind {
        Kind::Name | Kind::Choice(_) => Ok(serde_json::Value::from(text)),
        Kind::Flag => Ok(serde_json::Value::from(text == "true")),
        Kind::Whole { empty: Some(_) } | Kind::Decimal { empty: Some(_) } if text.is_empty() => {
            Ok(serde_json::Value::Null)
        }
        // The seed is the one 64-bit setting; every other whole number is 32-bit.
        Kind::Whole { .. } if field.name == "seed" => {
            text.parse::<u64>().map(serde_json::Value::from).map_err(|_| problem("a whole number"))
        }
        Kind::Whole { .. } => text.parse::<u32>().map(serde_json::Value::from).map_err(|_| problem("a whole number")),
        Kind::Decimal { .. } => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(serde_json::Value::Number)
            .ok_or_else(|| problem("a number")),
    }
}

/// A recipe that fills the form in one click.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// One short epoch to check that everything works.
    QuickCheck,
    /// The seed recipe: SGD, lr 0.001, momentum 0.9, 2 epochs, 0.5/0.5 normalisation.
    SeedRecipe,
    /// A frozen pretrained backbone; only the new head trains.
    LinearProbe,
    /// Every layer trains with a modern recipe: Nesterov SGD, cosine with warm-up, augmentation.
    FullFineTune,
}

impl Preset {
    /// Every preset, in the order the buttons show them.
    pub const ALL: [Preset; 4] = [Preset::QuickCheck, Preset::SeedRecipe, Preset::LinearProbe, Preset::FullFineTune];

    /// The button's `data-preset` value.
    pub fn key(self) -> &'static str {
        match self {
            Preset::QuickCheck => "quick-check",
            Preset::SeedRecipe => "seed-recipe",
            Preset::LinearProbe => "linear-probe",
            Preset::FullFineTune => "full-fine-tune",
        }
    }

    /// The button's text.
    pub fn title(self) -> &'static str {
        match self {
            Preset::QuickCheck => "Quick check",
            Preset::SeedRecipe => "Seed recipe",
            Preset::LinearProbe => "Linear probe",
            Preset::FullFineTune => "Full fine-tune",
        }
    }

    /// What the preset does, in one line shown under the buttons.
    pub fn description(self) -> &'static str {
        match self {
            Preset::QuickCheck => "One short epoch without augmentation, to check that everything works.",
            Preset::SeedRecipe => "The seed recipe: SGD at learning rate 0.001, momentum 0.9, 2 epochs.",
            Preset::LinearProbe => {
                "Trains only a new head on a frozen pretrained backbone (ImageNet's unless others are chosen): 5 \
                 epochs at learning rate 0.01."
            }
            Preset::FullFineTune => {
                "Trains every layer from pretrained weights for 10 epochs: Nesterov SGD at 0.01, cosine schedule \
                 after 1 warm-up epoch, weight decay, random crops and flips."
            }
        }
    }

    /// Whether `form` holds this recipe, which is when its button shows as pressed. Editing a setting the
    /// recipe sets leaves it; editing one it keeps (dataset, seed, input size, weights) does not, since
    /// those are the person's own choices under any recipe.
    pub fn holds(self, form: &TrainForm) -> bool {
        self.applied(form) == *form
    }

    /// `form` with this recipe applied. Dataset, seed, input size and chosen weights are kept; every
    /// other field takes the recipe's value or its default. Presets that want pretrained weights pick
    /// ImageNet's when none are chosen.
    pub fn applied(self, form: &TrainForm) -> TrainForm {
        let mut config = TrainConfig::for_dataset(form.text("dataset"));
        config.weights = form.text("weights").to_string();
        let pretrained = |weights: String| {
            if weights == defaults::WEIGHTS_NONE {
                defaults::WEIGHTS_IMAGENET.to_string()
            } else {
                weights
            }
        };
        match self {
            Preset::QuickCheck => {
                config.epochs = 1;
                config.batch_size = 64;
                config.lr = 0.001;
            }
            Preset::SeedRecipe => {
                config.epochs = 2;
                config.lr = 0.001;
                config.momentum = 0.9;
                config.normalization = Normalization::Half;
            }
            Preset::LinearProbe => {
                config.mode = FineTuneMode::Frozen;
                config.epochs = 5;
                config.lr = 0.01;
                config.momentum = 0.9;
                config.weights = pretrained(config.weights);
            }
            Preset::FullFineTune => {
                config.epochs = 10;
                config.lr = 0.01;
                config.momentum = 0.9;
                config.nesterov = true;
                config.schedule = Schedule::Cosine;
                config.warmup_epochs = 1;
                config.weight_decay = 5e-4;
                config.random_crop = true;
                config.horizontal_flip = true;
                config.weights = pretrained(config.weights);
            }
        }
        let mut applied = TrainForm::from_config(&config);
        for kept in ["seed", "input_size"] {
            applied.set(kept, form.text(kept));
        }
        applied
    }
}

/// The message for `field` in a checked form, if it has one.
pub fn problem_for<'a>(checked: &'a Result<TrainConfig, Vec<ConfigError>>, field: &str) -> Option<&'a str> {
    checked.as_ref().err()?.iter().find(|p| p.field == field).map(|p| p.message.as_str())
}

#[cfg(test)]
mod tests {
    fn entry(name: &str, present: bool, unavailable: Option<&str>) -> WeightsEntry {
        WeightsEntry {
            name: name.into(),
            label: name.into(),
            present,
            size_bytes: None,
            download_bytes: None,
            unavailable: unavailable.map(String::from),
        }
    }

    #[test]
    fn weights_that_cannot_be_had_give_way_to_a_file_here_or_random_weights() {
        let offline = entry("imagenet", false, Some("no network"));
        let mut form = TrainForm::first_visit();
        form.set("mode", "frozen");
        form.set("dataset", "digits");
        assert_eq!((form.text("weights"), form.text("mode")), ("imagenet", "frozen"));
        assert!(form.with_usable_weights(std::slice::from_ref(&offline)));
        assert_eq!((form.text("weights"), form.text("mode")), ("none", "full"));
        assert!(form.to_config().is_ok(), "a form that can start: {:?}", form.to_config().err());

        let mut form = TrainForm::first_visit();
        form.set("mode", "frozen");
        assert!(form.with_usable_weights(&[offline.clone(), entry("mine.pth", true, None)]));
        assert_eq!((form.text("weights"), form.text("mode")), ("mine.pth", "frozen"), "a file here keeps the recipe");

        let mut form = TrainForm::first_visit();
        assert!(!form.with_usable_weights(&[entry("imagenet", false, None)]), "downloadable: left as chosen");
        assert_eq!(form.text("weights"), "imagenet");
    }

    use super::*;
    use shared::OptimizerKind;

    /// The default form for dataset "tiny" with `texts` typed into it.
    fn typed(texts: &[(&str, &str)]) -> TrainForm {
        let mut form = TrainForm::default();
        form.set("dataset", "tiny");
        for (name, text) in texts {
            form.set(name, *text);
        }
        form
    }

    fn filled() -> TrainForm {
        typed(&[])
    }

    #[test]
    fn the_defaults_make_the_default_config() {
        assert_eq!(filled().to_config(), Ok(TrainConfig::for_dataset("tiny")));
    }

    #[test]
    fn an_empty_dataset_is_a_problem() {
        let checked = TrainForm::default().to_config();
        assert_eq!(
            problem_for(&checked, "dataset"),
            Some("Choose a dataset to train on: pick one in the Dataset menu, or upload a zip of images first")
        );
    }

    #[test]
    fn text_that_is_not_a_number_names_its_field_by_its_label() {
        let checked = typed(&[("epochs", "two"), ("lr", "")]).to_config();
        assert_eq!(problem_for(&checked, "epochs"), Some("Epochs must be a whole number, got \"two\""));
        assert_eq!(problem_for(&checked, "lr"), Some("Learning rate must be a number"));
        assert_eq!(problem_for(&checked, "momentum"), None);
    }

    #[test]
    fn out_of_range_values_get_the_shared_rule_message() {
        let checked = typed(&[("batch_size", "0"), ("momentum", "1")]).to_config();
        assert_eq!(problem_for(&checked, "batch_size"), Some("Batch size must be between 1 and 4096, got 0"));
        assert!(problem_for(&checked, "momentum").unwrap().starts_with("Momentum must be"));
        assert_eq!(checked.unwrap_err().len(), 2);
    }

    #[test]
    fn a_box_of_a_setting_that_does_not_apply_is_never_a_problem() {
        let constant = typed(&[("step_size", "x"), ("gamma", "0")]);
        assert!(constant.to_config().is_ok());
        let step = typed(&[("step_size", "x"), ("gamma", "0"), ("schedule", "step")]).to_config();
        assert_eq!(problem_for(&step, "step_size"), Some("Step size must be a whole number, got \"x\""));
        assert!(problem_for(&step, "gamma").unwrap().starts_with("Drop factor must be greater than 0"));
    }

    #[test]
    fn numbers_with_spaces_and_exponents_are_read() {
        let config = typed(&[("lr", " 1e-2 "), ("input_size", "64")]).to_config().unwrap();
        assert_eq!(config.lr, 0.01);
        assert_eq!(config.input_size, 64);
    }

    #[test]
    fn a_whole_number_too_large_for_its_setting_is_not_a_whole_number_of_it() {
        let checked = typed(&[("epochs", "99999999999"), ("seed", "99999999999")]).to_config();
        assert!(problem_for(&checked, "epochs").unwrap().starts_with("Epochs must be a whole number"));
        assert_eq!(problem_for(&checked, "seed"), None);
    }

    #[test]
    fn empty_optional_boxes_mean_none_and_numbers_mean_some() {
        let config = filled().to_config().unwrap();
        assert_eq!((config.grad_clip_norm, config.early_stopping_patience), (None, None));
        let config = typed(&[("grad_clip_norm", "1.5"), ("early_stopping_patience", " 3 ")]).to_config().unwrap();
        assert_eq!((config.grad_clip_norm, config.early_stopping_patience), (Some(1.5), Some(3)));
        let checked = typed(&[("grad_clip_norm", "0"), ("early_stopping_patience", "x")]).to_config();
        assert!(problem_for(&checked, "grad_clip_norm").unwrap().starts_with("Gradient clip norm must be greater"));
        assert!(problem_for(&checked, "early_stopping_patience").unwrap().contains("whole number"));
    }

    #[test]
    fn a_form_round_trips_every_config_field() {
        let config = TrainConfig {
            mode: FineTuneMode::TwoPhase,
            weights: "r18.safetensors".into(),
            epochs: 6,
            frozen_epochs: 2,
            optimizer: OptimizerKind::Adamw,
            schedule: Schedule::OneCycle,
            grad_clip_norm: Some(2.0),
            early_stopping_patience: Some(4),
            label_smoothing: 0.1,
            mixed_precision: true,
            ..TrainConfig::for_dataset("tiny")
        };
        assert_eq!(TrainForm::from_config(&config).to_config(), Ok(config));
    }

    #[test]
    fn presets_keep_dataset_seed_and_input_size() {
        let form = typed(&[("seed", "7"), ("input_size", "64"), ("lr", "3")]);
        for preset in Preset::ALL {
            let applied = preset.applied(&form);
            assert_eq!((applied.text("dataset"), applied.text("seed")), ("tiny", "7"), "{preset:?}");
            assert_eq!(applied.text("input_size"), "64");
        }
    }

    #[test]
    fn preset_descriptions_are_one_plain_sentence() {
        for preset in Preset::ALL {
            let description = preset.description();
            assert!(description.ends_with('.') && !description.contains('_'), "{description}");
            assert_eq!(description.matches(". ").count(), 0, "one sentence: {description}");
        }
    }

    #[test]
    fn the_quick_check_is_one_epoch_without_augmentation() {
        let form = typed(&[("random_crop", "true"), ("horizontal_flip", "true"), ("epochs", "9")]);
        let config = Preset::QuickCheck.applied(&form).to_config().unwrap();
        assert_eq!((config.epochs, config.batch_size, config.lr), (1, 64, 0.001));
        assert!(!config.random_crop && !config.horizontal_flip);
    }

    #[test]
    fn the_seed_recipe_uses_half_normalisation() {
        let config = Preset::SeedRecipe.applied(&filled()).to_config().unwrap();
        assert_eq!(config.normalization, Normalization::Half);
        assert_eq!((config.epochs, config.lr, config.momentum), (2, 0.001, 0.9));
        assert_eq!(config.optimizer, OptimizerKind::Sgd);
    }

    #[test]
    fn the_linear_probe_starts_from_imagenet_unless_other_weights_are_chosen() {
        let config = Preset::LinearProbe.applied(&filled()).to_config().unwrap();
        assert_eq!((config.mode, config.lr, config.weights.as_str()), (FineTuneMode::Frozen, 0.01, "imagenet"));
        let chosen = typed(&[("weights", "b.safetensors")]);
        assert_eq!(Preset::LinearProbe.applied(&chosen).text("weights"), "b.safetensors");
    }

    #[test]
    fn a_first_visit_shows_the_seed_recipe_from_imagenet_weights() {
        let first = TrainForm::first_visit();
        assert_eq!(first.text("weights"), "imagenet");
        let mut with_dataset = first.clone();
        with_dataset.set("dataset", "tiny");
        let pretrained_seed = Preset::SeedRecipe.applied(&typed(&[("weights", "imagenet")]));
        assert_eq!(with_dataset, pretrained_seed);
        let config = with_dataset.to_config().unwrap();
        assert_eq!((config.epochs, config.lr, config.normalization), (2, 0.001, Normalization::Half));
    }

    #[test]
    fn the_full_fine_tune_is_a_valid_modern_recipe() {
        let config = Preset::FullFineTune.applied(&filled()).to_config().unwrap();
        assert_eq!((config.mode, config.weights.as_str()), (FineTuneMode::Full, "imagenet"));
        assert_eq!((config.schedule, config.warmup_epochs, config.epochs), (Schedule::Cosine, 1, 10));
        assert!(config.nesterov && config.random_crop && config.horizontal_flip);
        assert_eq!((config.lr, config.weight_decay), (0.01, 5e-4));
    }

    #[test]
    fn a_preset_is_held_through_edits_of_what_it_keeps_but_not_of_what_it_sets() {
        for preset in Preset::ALL {
            let form = preset.applied(&filled());
            assert!(preset.holds(&form), "{preset:?}");
            for (kept, value) in [("seed", "123"), ("input_size", "96")] {
                let mut edited = form.clone();
                edited.set(kept, value);
                assert!(preset.holds(&edited), "{preset:?} keeps {kept}");
            }
            for (set, value) in [("epochs", "37"), ("lr", "0.5"), ("batch_size", "12")] {
                let mut edited = form.clone();
                edited.set(set, value);
                assert!(!preset.holds(&edited), "{preset:?} sets {set}: editing it leaves the recipe");
            }
        }
    }

    #[test]
    fn applying_a_preset_twice_changes_nothing() {
        for preset in Preset::ALL {
            let once = preset.applied(&filled());
            assert_eq!(preset.applied(&once), once, "{preset:?}");
        }
    }
}
