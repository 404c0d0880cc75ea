//! The training form's fields as typed, their check against the shared rules, and the presets.
//!
//! Number fields are kept as the text in each box so that a half-typed number ("0.") is not
//! rewritten under the cursor. [`TrainForm::to_config`] parses them and then applies
//! [`TrainConfig::problems`], the same rules the server uses to refuse a run. A [`Preset`] fills
//! the form with a known recipe in one click.

use shared::{defaults, ConfigError, FineTuneMode, Normalization, OptimizerKind, Schedule, TrainConfig};

/// The training form as the person has filled it in. It is saved in the browser as JSON (see
/// [`crate::saved`]); a field missing from what was saved takes its default.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
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
    /// `"none"`, `"imagenet"` or a weights file name.
    pub weights: String,
    /// Which layers train.
    pub mode: FineTuneMode,
    /// Text of the frozen epochs box (two-phase mode).
    pub frozen_epochs: String,
    /// Text of the backbone learning-rate scale box (two-phase mode).
    pub backbone_lr_scale: String,
    /// The update rule.
    pub optimizer: OptimizerKind,
    /// Nesterov momentum (SGD only).
    pub nesterov: bool,
    /// Text of the weight decay box.
    pub weight_decay: String,
    /// How the learning rate changes over the run.
    pub schedule: Schedule,
    /// Text of the warm-up epochs box.
    pub warmup_epochs: String,
    /// Text of the step size box (step schedule).
    pub step_size: String,
    /// Text of the gamma box (step schedule).
    pub gamma: String,
    /// Text of the label smoothing box.
    pub label_smoothing: String,
    /// Text of the gradient clipping box; empty for no clipping.
    pub grad_clip_norm: String,
    /// Random crop augmentation.
    pub random_crop: bool,
    /// Random horizontal flip augmentation.
    pub horizontal_flip: bool,
    /// Text of the early stopping patience box; empty to never stop early.
    pub early_stopping_patience: String,
    /// Text of the validation fraction box (datasets without a test split).
    pub validation_fraction: String,
    /// CUDA automatic mixed precision.
    pub mixed_precision: bool,
    /// Let cuDNN pick its fastest algorithms.
    pub cudnn_benchmark: bool,
    pub channels_last: bool,
}

impl Default for TrainForm {
    fn default() -> Self {
        TrainForm::from_config(&TrainConfig::for_dataset(""))
    }
}

impl TrainForm {
    /// The form a first visit shows: the seed recipe, starting from ImageNet's weights.
    pub fn first_visit() -> Self {
        let pretrained = TrainForm { weights: defaults::WEIGHTS_IMAGENET.into(), ..TrainForm::default() };
        Preset::SeedRecipe.applied(&pretrained)
    }

    /// The form showing `config`, every number written as Rust writes it.
    pub fn from_config(config: &TrainConfig) -> Self {
        TrainForm {
            dataset: config.dataset.clone(),
            epochs: config.epochs.to_string(),
            batch_size: config.batch_size.to_string(),
            lr: config.lr.to_string(),
            momentum: config.momentum.to_string(),
            seed: config.seed.to_string(),
            input_size: config.input_size.to_string(),
            normalization: config.normalization,
            weights: config.weights.clone(),
            mode: config.mode,
            frozen_epochs: config.frozen_epochs.to_string(),
            backbone_lr_scale: config.backbone_lr_scale.to_string(),
            optimizer: config.optimizer,
            nesterov: config.nesterov,
            weight_decay: config.weight_decay.to_string(),
            schedule: config.schedule,
            warmup_epochs: config.warmup_epochs.to_string(),
            step_size: config.step_size.to_string(),
            gamma: config.gamma.to_string(),
            label_smoothing: config.label_smoothing.to_string(),
            grad_clip_norm: config.grad_clip_norm.map_or_else(String::new, |v| v.to_string()),
            random_crop: config.random_crop,
            horizontal_flip: config.horizontal_flip,
            early_stopping_patience: config.early_stopping_patience.map_or_else(String::new, |v| v.to_string()),
            validation_fraction: config.validation_fraction.to_string(),
            mixed_precision: config.mixed_precision,
            cudnn_benchmark: config.cudnn_benchmark,
            channels_last: config.channels_last,
        }
    }

    /// The configuration these fields describe, or every problem with them, one per field.
    pub fn to_config(&self) -> Result<TrainConfig, Vec<ConfigError>> {
        let mut problems = Vec::new();
        let base = TrainConfig::for_dataset(self.dataset.trim());
        let p = &mut problems;
        let config = TrainConfig {
            epochs: parse("epochs", &self.epochs, p).unwrap_or(base.epochs),
            batch_size: parse("batch_size", &self.batch_size, p).unwrap_or(base.batch_size),
            lr: parse("lr", &self.lr, p).unwrap_or(base.lr),
            momentum: parse("momentum", &self.momentum, p).unwrap_or(base.momentum),
            seed: parse("seed", &self.seed, p).unwrap_or(base.seed),
            input_size: parse("input_size", &self.input_size, p).unwrap_or(base.input_size),
            normalization: self.normalization,
            weights: self.weights.clone(),
            mode: self.mode,
            frozen_epochs: parse("frozen_epochs", &self.frozen_epochs, p).unwrap_or(base.frozen_epochs),
            backbone_lr_scale: parse("backbone_lr_scale", &self.backbone_lr_scale, p).unwrap_or(base.backbone_lr_scale),
            optimizer: self.optimizer,
            nesterov: self.nesterov,
            weight_decay: parse("weight_decay", &self.weight_decay, p).unwrap_or(base.weight_decay),
            schedule: self.schedule,
            warmup_epochs: parse("warmup_epochs", &self.warmup_epochs, p).unwrap_or(base.warmup_epochs),
            step_size: parse("step_size", &self.step_size, p).unwrap_or(base.step_size),
            gamma: parse("gamma", &self.gamma, p).unwrap_or(base.gamma),
            label_smoothing: parse("label_smoothing", &self.label_smoothing, p).unwrap_or(base.label_smoothing),
            grad_clip_norm: parse_optional("grad_clip_norm", &self.grad_clip_norm, p),
            random_crop: self.random_crop,
            horizontal_flip: self.horizontal_flip,
            early_stopping_patience: parse_optional("early_stopping_patience", &self.early_stopping_patience, p),
            validation_fraction: parse("validation_fraction", &self.validation_fraction, p)
                .unwrap_or(base.validation_fraction),
            mixed_precision: self.mixed_precision,
            cudnn_benchmark: self.cudnn_benchmark,
            channels_last: self.channels_last,
            ..base
        };

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

    /// What the preset sets, for the button's tooltip.
    pub fn description(self) -> &'static str {
        match self {
            Preset::QuickCheck => "1 epoch, batch 64, lr 0.001, no augmentation",
            Preset::SeedRecipe => "SGD lr 0.001, momentum 0.9, 2 epochs, 0.5/0.5 normalisation",
            Preset::LinearProbe => {
                "Frozen pretrained backbone (ImageNet unless other weights are chosen), lr 0.01, 5 epochs"
            }
            Preset::FullFineTune => {
                "All layers from pretrained weights (ImageNet unless others are chosen), Nesterov SGD lr 0.01, cosine \
                 with 1 warm-up epoch, weight decay 5e-4, crop + flip, 10 epochs"
            }
        }
    }

    /// `form` with this recipe applied. Dataset, seed, input size and chosen weights are kept; every
    /// other field takes the recipe's value or its default. Presets that want pretrained weights pick
    /// ImageNet's when none are chosen.
    pub fn applied(self, form: &TrainForm) -> TrainForm {
        let mut config = TrainConfig::for_dataset(form.dataset.clone());
        config.weights = form.weights.clone();
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
        TrainForm { seed: form.seed.clone(), input_size: form.input_size.clone(), ..TrainForm::from_config(&config) }
    }
}

/// The message for `field` in a checked form, if it has one.
pub fn problem_for<'a>(checked: &'a Result<TrainConfig, Vec<ConfigError>>, field: &str) -> Option<&'a str> {
    checked.as_ref().err()?.iter().find(|p| p.field == field).map(|p| p.message.as_str())
}

fn parse<T: std::str::FromStr>(field: &'static str, text: &str, problems: &mut Vec<ConfigError>) -> Option<T> {
    let parsed = text.trim().parse().ok();
    if parsed.is_none() {
        problems.push(ConfigError { field, message: not_a_number(field, std::any::type_name::<T>(), text) });
    }
    parsed
}

/// An empty box means "none"; anything else must parse.
fn parse_optional<T: std::str::FromStr>(field: &'static str, text: &str, problems: &mut Vec<ConfigError>) -> Option<T> {
    if text.trim().is_empty() {
        None
    } else {
        parse(field, text, problems)
    }
}

fn not_a_number(field: &str, type_name: &str, text: &str) -> String {
    let kind = if type_name == "f64" { "a number" } else { "a whole number" };
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

    #[test]
    fn empty_optional_boxes_mean_none_and_numbers_mean_some() {
        let config = filled().to_config().unwrap();
        assert_eq!((config.grad_clip_norm, config.early_stopping_patience), (None, None));
        let form = TrainForm { grad_clip_norm: "1.5".into(), early_stopping_patience: " 3 ".into(), ..filled() };
        let config = form.to_config().unwrap();
        assert_eq!((config.grad_clip_norm, config.early_stopping_patience), (Some(1.5), Some(3)));
        let form = TrainForm { grad_clip_norm: "0".into(), early_stopping_patience: "x".into(), ..filled() };
        let checked = form.to_config();
        assert!(problem_for(&checked, "grad_clip_norm").unwrap().starts_with("grad_clip_norm must be greater"));
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
        let form = TrainForm { seed: "7".into(), input_size: "64".into(), lr: "3".into(), ..filled() };
        for preset in Preset::ALL {
            let applied = preset.applied(&form);
            assert_eq!((applied.dataset.as_str(), applied.seed.as_str()), ("tiny", "7"), "{preset:?}");
            assert_eq!(applied.input_size, "64");
        }
    }

    #[test]
    fn the_quick_check_is_one_epoch_without_augmentation() {
        let form = TrainForm { random_crop: true, horizontal_flip: true, epochs: "9".into(), ..filled() };
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
        let chosen = TrainForm { weights: "b.safetensors".into(), ..filled() };
        assert_eq!(Preset::LinearProbe.applied(&chosen).weights, "b.safetensors");
    }

    #[test]
    fn a_first_visit_shows_the_seed_recipe_from_imagenet_weights() {
        let first = TrainForm::first_visit();
        assert_eq!(first.weights, "imagenet");
        let dataset = |form: &TrainForm| TrainForm { dataset: "tiny".into(), ..form.clone() };
        let pretrained_seed = Preset::SeedRecipe.applied(&TrainForm { weights: "imagenet".into(), ..filled() });
        assert_eq!(dataset(&first), pretrained_seed);
        let config = dataset(&first).to_config().unwrap();
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
    fn applying_a_preset_twice_changes_nothing() {
        for preset in Preset::ALL {
            let once = preset.applied(&filled());
            assert_eq!(preset.applied(&once), once, "{preset:?}");
        }
    }
}
