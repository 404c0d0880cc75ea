//! The one table of training settings: for every [`TrainConfig`] field its JSON name, the label a person
//! sees, a help sentence, its range and unit, the form section it sits in and when it applies.
//!
//! Everything that shows or checks a setting reads [`FIELDS`]: [`TrainConfig::problems`] writes its
//! sentences with the labels and ranges here, the page builds its form and its configuration display
//! from it, and `docs/API.md` carries the table [`markdown_table`] writes (a test keeps the two equal).
//! Adding a setting means adding it to [`TrainConfig`], its `Default` and one entry here.

use crate::{
    check_dataset_reference, defaults, names::check_weights_name, ConfigError, FineTuneMode, Normalization,
    OptimizerKind, Schedule, TrainConfig,
};

/// One setting of [`TrainConfig`].
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The field's name in the JSON of [`TrainConfig`], and its form control's `name`.
    pub name: &'static str,
    /// What the form calls it, and what every message about it says.
    pub label: &'static str,
    /// One sentence saying what it does, shown under the form control.
    pub help: &'static str,
    /// What kind of value it holds, and so which control edits it.
    pub kind: Kind,
    /// The numbers it accepts, for number fields; other rules are written in [`TrainConfig::problems`].
    pub range: Option<Range>,
    /// The unit its number counts, written after it (`"px"`, `"epochs"`).
    pub unit: Option<&'static str>,
    /// Where the form shows it.
    pub section: Section,
    /// When it has an effect; the form hides it, and the rules skip it, otherwise.
    pub when: When,
    /// Its value in a configuration.
    pub value: fn(&TrainConfig) -> Value,
}

/// What kind of value a field holds.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A file or folder name chosen from a list (dataset, weights).
    Name,
    /// One of a fixed set of values: every JSON name with its label, in menu order.
    Choice(fn() -> Vec<(&'static str, &'static str)>),
    /// On or off.
    Flag,
    /// A whole number; with `empty`, an empty box means `null` and reads as that phrase.
    Whole {
        /// What `null` means, when the field may be left empty.
        empty: Option<&'static str>,
    },
    /// A decimal number; with `empty`, an empty box means `null` and reads as that phrase.
    Decimal {
        /// What `null` means, when the field may be left empty.
        empty: Option<&'static str>,
    },
}

/// A field's value in a configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A name (dataset or weights).
    Name(String),
    /// A choice, by its JSON name.
    Choice(&'static str),
    /// A flag.
    Flag(bool),
    /// A whole number, `None` for `null`.
    Whole(Option<u64>),
    /// A decimal number, `None` for `null`.
    Decimal(Option<f64>),
}

impl Value {
    /// The number a range judges; `None` for `null` and for values that are not numbers.
    pub fn number(&self) -> Option<f64> {
        match *self {
            Value::Whole(n) => n.map(|n| n as f64),
            Value::Decimal(x) => x,
            _ => None,
        }
    }
}

/// One end of a [`Range`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// No limit on this side.
    Open,
    /// The value itself is allowed.
    Inclusive(f64),
    /// Values up to (or down to) it, but not it.
    Exclusive(f64),
}

/// The numbers a field accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// The lower end.
    pub min: Bound,
    /// The upper end.
    pub max: Bound,
}

impl Range {
    const fn new(min: Bound, max: Bound) -> Option<Range> {
        Some(Range { min, max })
    }

    /// True when `value` is a finite number inside the range.
    pub fn contains(&self, value: f64) -> bool {
        let above = match self.min {
            Bound::Open => true,
            Bound::Inclusive(min) => value >= min,
            Bound::Exclusive(min) => value > min,
        };
        let below = match self.max {
            Bound::Open => true,
            Bound::Inclusive(max) => value <= max,
            Bound::Exclusive(max) => value < max,
        };
        value.is_finite() && above && below
    }

    /// The range as the end of a sentence: `"between 1 and 4096"`, `"greater than 0 and at most 10"`.
    pub fn phrase(&self) -> String {
        use Bound::*;
        match (self.min, self.max) {
            (Inclusive(a), Inclusive(b)) => format!("between {a} and {b}"),
            (Exclusive(a), Exclusive(b)) => format!("between {a} and {b}, both excluded"),
            (Inclusive(a), Exclusive(b)) => format!("at least {a} and below {b}"),
            (Exclusive(a), Inclusive(b)) => format!("greater than {a} and at most {b}"),
            (Inclusive(a), Open) => format!("at least {a}"),
            (Exclusive(a), Open) => format!("greater than {a}"),
            (Open, Inclusive(b)) => format!("at most {b}"),
            (Open, Exclusive(b)) => format!("below {b}"),
            (Open, Open) => "any number".to_string(),
        }
    }
}

/// The parts of the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Always open: what most runs change.
    Basic,
    /// Advanced: which layers train.
    Layers,
    /// Advanced: the update rule and the learning-rate schedule.
    Optimiser,
    /// Advanced: regularisation and augmentation.
    Regularisation,
    /// Advanced: options that only a CUDA GPU uses.
    Gpu,
}

impl Section {
    /// Every section, in form order.
    pub const ALL: [Section; 5] =
        [Section::Basic, Section::Layers, Section::Optimiser, Section::Regularisation, Section::Gpu];

    /// The section's heading.
    pub fn title(self) -> &'static str {
        match self {
            Section::Basic => "Basic settings",
            Section::Layers => "Which layers train",
            Section::Optimiser => "Optimiser and schedule",
            Section::Regularisation => "Regularisation and data",
            Section::Gpu => "GPU",
        }
    }

    /// True for the sections inside the collapsed Advanced part of the form.
    pub fn is_advanced(self) -> bool {
        self != Section::Basic
    }
}

/// What the form knows besides the configuration, which some settings depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Surroundings {
    /// The server trains on a CUDA GPU.
    pub gpu: bool,
    /// The chosen dataset has no test split, so part of each class is held out for testing.
    pub held_out_test: bool,
}

impl Surroundings {
    /// Every setting that the configuration allows applies: what the server's rules assume.
    pub const ANY: Surroundings = Surroundings { gpu: true, held_out_test: true };
}

/// When a setting has an effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Always.
    Always,
    /// With the SGD optimizer.
    Sgd,
    /// In two-phase fine-tuning.
    TwoPhase,
    /// With the step schedule.
    StepSchedule,
    /// With every schedule but one-cycle, which has its own warm-up.
    WarmUpSchedule,
    /// When the server has a CUDA GPU.
    Gpu,
    /// When the dataset has no test split.
    HeldOutTest,
}

impl When {
    /// True when a setting with this condition has an effect on `config` in `around`.
    pub fn holds(self, config: &TrainConfig, around: &Surroundings) -> bool {
        match self {
            When::Always => true,
            When::Sgd => config.optimizer == OptimizerKind::Sgd,
            When::TwoPhase => config.mode == FineTuneMode::TwoPhase,
            When::StepSchedule => config.schedule == Schedule::Step,
            When::WarmUpSchedule => config.schedule != Schedule::OneCycle,
            When::Gpu => around.gpu,
            When::HeldOutTest => around.held_out_test,
        }
    }

    /// The condition in words, for the docs.
    pub fn describe(self) -> &'static str {
        match self {
            When::Always => "always",
            When::Sgd => "with the SGD optimizer",
            When::TwoPhase => "in two-phase fine-tuning",
            When::StepSchedule => "with the step schedule",
            When::WarmUpSchedule => "with every schedule but one-cycle",
            When::Gpu => "when the server has a CUDA GPU",
            When::HeldOutTest => "when the dataset has no test split",
        }
    }
}

/// An enum setting whose values have JSON names and labels.
pub trait Choice: Copy + PartialEq + 'static {
    /// Every value with its JSON name and its label, in menu order.
    const CHOICES: &'static [(Self, &'static str, &'static str)];

    /// The value's JSON name.
    fn name(self) -> &'static str {
        Self::CHOICES.iter().find(|c| c.0 == self).map_or("", |c| c.1)
    }

    /// The value as a person reads it.
    fn label(self) -> &'static str {
        Self::CHOICES.iter().find(|c| c.0 == self).map_or("", |c| c.2)
    }

    /// The value with JSON name `name`.
    fn from_name(name: &str) -> Option<Self> {
        Self::CHOICES.iter().find(|c| c.1 == name).map(|c| c.0)
    }
}

/// JSON names and labels of `T`'s values, for [`Kind::Choice`].
fn options<T: Choice>() -> Vec<(&'static str, &'static str)> {
    T::CHOICES.iter().map(|&(_, name, label)| (name, label)).collect()
}

impl Choice for Normalization {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (Normalization::Imagenet, "imagenet", "ImageNet mean and spread"),
        (Normalization::Half, "half", "0.5 mean and spread (seed recipe)"),
    ];
}

impl Choice for FineTuneMode {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (FineTuneMode::Full, "full", "All layers"),
        (FineTuneMode::Frozen, "frozen", "Head only (frozen backbone)"),
        (FineTuneMode::TwoPhase, "two_phase", "Two-phase: head, then all layers"),
    ];
}

impl Choice for OptimizerKind {
    const CHOICES: &'static [(Self, &'static str, &'static str)] =
        &[(OptimizerKind::Sgd, "sgd", "SGD"), (OptimizerKind::Adamw, "adamw", "AdamW")];
}

impl Choice for Schedule {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (Schedule::Constant, "constant", "Constant"),
        (Schedule::Step, "step", "Step"),
        (Schedule::Cosine, "cosine", "Cosine"),
        (Schedule::OneCycle, "one_cycle", "One-cycle"),
    ];
}

const EPOCHS: &str = "epochs";
const WHOLE: Kind = Kind::Whole { empty: None };
const DECIMAL: Kind = Kind::Decimal { empty: None };

/// Every setting, in the order the form shows them.
pub const FIELDS: [Field; 28] = [
    Field {
        name: "dataset",
        label: "Dataset",
        help: "The images to train and test on: a folder in the data folder, or CIFAR-10, downloaded on first use.",
        kind: Kind::Name,
        range: None,
        unit: None,
        section: Section::Basic,
        when: When::Always,
        value: |c| Value::Name(c.dataset.clone()),
    },
    Field {
        name: "epochs",
        label: "Epochs",
        help: "How many times training goes through every training image.",
        kind: WHOLE,
        range: Range::new(Bound::Inclusive(1.0), Bound::Inclusive(limits_f64(crate::limits::MAX_EPOCHS))),
        unit: None,
        section: Section::Basic,
        when: When::Always,
        value: |c| Value::Whole(Some(c.epochs.into())),
    },
    Field {
        name: "batch_size",
        label: "Batch size",
        help: "Images per update step; larger batches need more memory.",
        kind: WHOLE,
        range: Range::new(Bound::Inclusive(1.0), Bound::Inclusive(limits_f64(crate::limits::MAX_BATCH_SIZE))),
        unit: None,
        section: Section::Basic,
        when: When::Always,
        value: |c| Value::Whole(Some(c.batch_size.into())),
    },
    Field {
        name: "lr",
        label: "Learning rate",
        help: "How far each update step moves the weights; the schedule changes it during the run.",
        kind: DECIMAL,
        range: Range::new(Bound::Exclusive(0.0), Bound::Inclusive(crate::limits::MAX_LR)),
        unit: None,
        section: Section::Basic,
        when: When::Always,
        value: |c| Value::Decimal(Some(c.lr)),
    },
    Field {
        name: "momentum",
        label: "Momentum",
        help: "How much of the previous update each SGD step carries on.",
        kind: DECIMAL,
        range: Range::new(Bound::Inclusive(0.0), Bound::Exclusive(1.0)),
        unit: None,
        section: Section::Basic,
        when: When::Sgd,
        value: |c| Value::Decimal(Some(c.momentum)),
    },
    Field {
        name: "seed",
        label: "Seed",
        help: "Where the random choices start; the same seed repeats a run exactly on the CPU.",
        kind: WHOLE,
        range: None,
        unit: None,
        section: Section::Basic,
        when: When::Always,
        value: |c| Value::Whole(Some(c.seed)),
    },
    Field {
        name: "input_size",
        label: "Input size",
        help: "Images are resized to this many pixels square before the network sees them.",
        kind: WHOLE,
        range: Range::new(
            Bound::Inclusive(limits_f64(crate::limits::MIN_INPUT_SIZE)),
            Bound::Inclusive(limits_f64(crate::limits::MAX_INPUT_SIZE)),
        ),
        unit: Some("px"),
        section: Section::Basic,
        when: When::Always,
        value: |c| Value::Whole(Some(c.input_size.into())),
    },
    Field {
        name: "normalization",
        label: "Normalization",
        help: "How pixel values are scaled; pretrained weights expect ImageNet's.",
        kind: Kind::Choice(options::<Normalization>),
        range: None,
        unit: None,
        section: Section::Basic,
        when: When::Always,
        value: |c| Value::Choice(c.normalization.name()),
    },
    Field {
        name: "weights",
        label: "Starting weights",
        help: "Random, ImageNet's ResNet-18 (downloaded on first use), or an uploaded ResNet-18 state dict.",
        kind: Kind::Name,
        range: None,
        unit: None,
        section: Section::Basic,
        when: When::Always,
        value: |c| Value::Name(c.weights.clone()),
    },
    Field {
        name: "mode",
        label: "Fine-tune mode",
        help: "Which layers learn: all of them, only the new head, or the head first and then all.",
        kind: Kind::Choice(options::<FineTuneMode>),
        range: None,
        unit: None,
        section: Section::Layers,
        when: When::Always,
        value: |c| Value::Choice(c.mode.name()),
    },
    Field {
        name: "frozen_epochs",
        label: "Frozen epochs",
        help: "Epochs that train only the head before the whole network trains.",
        kind: WHOLE,
        range: Range::new(Bound::Inclusive(1.0), Bound::Open),
        unit: Some(EPOCHS),
        section: Section::Layers,
        when: When::TwoPhase,
        value: |c| Value::Whole(Some(c.frozen_epochs.into())),
    },
    Field {
        name: "backbone_lr_scale",
        label: "Backbone learning-rate scale",
        help: "Once the backbone trains, its learning rate is the learning rate times this.",
        kind: DECIMAL,
        range: Range::new(Bound::Exclusive(0.0), Bound::Inclusive(1.0)),
        unit: None,
        section: Section::Layers,
        when: When::TwoPhase,
        value: |c| Value::Decimal(Some(c.backbone_lr_scale)),
    },
    Field {
        name: "optimizer",
        label: "Optimizer",
        help: "The update rule: SGD with momentum, or AdamW.",
        kind: Kind::Choice(options::<OptimizerKind>),
        range: None,
        unit: None,
        section: Section::Optimiser,
        when: When::Always,
        value: |c| Value::Choice(c.optimizer.name()),
    },
    Field {
        name: "weight_decay",
        label: "Weight decay",
        help: "Pulls every weight a little towards zero at each step (decoupled from the gradient with AdamW).",
        kind: DECIMAL,
        range: Range::new(Bound::Inclusive(0.0), Bound::Inclusive(1.0)),
        unit: None,
        section: Section::Optimiser,
        when: When::Always,
        value: |c| Value::Decimal(Some(c.weight_decay)),
    },
    Field {
        name: "schedule",
        label: "Learning-rate schedule",
        help: "How the learning rate changes over the run.",
        kind: Kind::Choice(options::<Schedule>),
        range: None,
        unit: None,
        section: Section::Optimiser,
        when: When::Always,
        value: |c| Value::Choice(c.schedule.name()),
    },
    Field {
        name: "warmup_epochs",
        label: "Warm-up epochs",
        help: "Epochs at the start in which the learning rate rises from 0.",
        kind: WHOLE,
        range: Range::new(Bound::Inclusive(0.0), Bound::Open),
        unit: Some(EPOCHS),
        section: Section::Optimiser,
        when: When::WarmUpSchedule,
        value: |c| Value::Whole(Some(c.warmup_epochs.into())),
    },
    Field {
        name: "step_size",
        label: "Step size",
        help: "Epochs between two drops of the learning rate.",
        kind: WHOLE,
        range: Range::new(Bound::Inclusive(1.0), Bound::Open),
        unit: Some(EPOCHS),
        section: Section::Optimiser,
        when: When::StepSchedule,
        value: |c| Value::Whole(Some(c.step_size.into())),
    },
    Field {
        name: "gamma",
        label: "Drop factor",
        help: "Each drop multiplies the learning rate by this.",
        kind: DECIMAL,
        range: Range::new(Bound::Exclusive(0.0), Bound::Inclusive(1.0)),
        unit: None,
        section: Section::Optimiser,
        when: When::StepSchedule,
        value: |c| Value::Decimal(Some(c.gamma)),
    },
    Field {
        name: "nesterov",
        label: "Nesterov momentum",
        help: "Takes each SGD step from where the momentum is heading.",
        kind: Kind::Flag,
        range: None,
        unit: None,
        section: Section::Optimiser,
        when: When::Sgd,
        value: |c| Value::Flag(c.nesterov),
    },
    Field {
        name: "label_smoothing",
        label: "Label smoothing",
        help: "Spreads this share of each target over the other classes, so the model is less sure of itself.",
        kind: DECIMAL,
        range: Range::new(Bound::Inclusive(0.0), Bound::Exclusive(1.0)),
        unit: None,
        section: Section::Regularisation,
        when: When::Always,
        value: |c| Value::Decimal(Some(c.label_smoothing)),
    },
    Field {
        name: "grad_clip_norm",
        label: "Gradient clip norm",
        help: "Scales the gradients down when their overall size is above this; empty for no clipping.",
        kind: Kind::Decimal { empty: Some("no clipping") },
        range: Range::new(Bound::Exclusive(0.0), Bound::Open),
        unit: None,
        section: Section::Regularisation,
        when: When::Always,
        value: |c| Value::Decimal(c.grad_clip_norm),
    },
    Field {
        name: "early_stopping_patience",
        label: "Early-stopping patience",
        help: "Stops after this many epochs without a better test accuracy; empty to train every epoch.",
        kind: Kind::Whole { empty: Some("never stop early") },
        range: Range::new(Bound::Inclusive(1.0), Bound::Open),
        unit: Some(EPOCHS),
        section: Section::Regularisation,
        when: When::Always,
        value: |c| Value::Whole(c.early_stopping_patience.map(u64::from)),
    },
    Field {
        name: "validation_fraction",
        label: "Held-out test share",
        help: "For a dataset without a test folder: the share of each class kept apart for testing.",
        kind: DECIMAL,
        range: Range::new(Bound::Exclusive(0.0), Bound::Exclusive(1.0)),
        unit: None,
        section: Section::Regularisation,
        when: When::HeldOutTest,
        value: |c| Value::Decimal(Some(c.validation_fraction)),
    },
    Field {
        name: "random_crop",
        label: "Random crop",
        help: "Shifts each training image by a few pixels at random.",
        kind: Kind::Flag,
        range: None,
        unit: None,
        section: Section::Regularisation,
        when: When::Always,
        value: |c| Value::Flag(c.random_crop),
    },
    Field {
        name: "horizontal_flip",
        label: "Horizontal flip",
        help: "Mirrors half the training images, chosen at random.",
        kind: Kind::Flag,
        range: None,
        unit: None,
        section: Section::Regularisation,
        when: When::Always,
        value: |c| Value::Flag(c.horizontal_flip),
    },
    Field {
        name: "mixed_precision",
        label: "Mixed precision",
        help: "Runs the forward pass in bfloat16 on the GPU: faster, and nearly as accurate.",
        kind: Kind::Flag,
        range: None,
        unit: None,
        section: Section::Gpu,
        when: When::Gpu,
        value: |c| Value::Flag(c.mixed_precision),
    },
    Field {
        name: "cudnn_benchmark",
        label: "cuDNN benchmark",
        help: "Lets cuDNN time its convolution methods once and keep the fastest.",
        kind: Kind::Flag,
        range: None,
        unit: None,
        section: Section::Gpu,
        when: When::Gpu,
        value: |c| Value::Flag(c.cudnn_benchmark),
    },
    Field {
        name: "channels_last",
        label: "Channels-last memory",
        help: "Keeps images and weights with the colour channel last, which tensor cores convolve faster.",
        kind: Kind::Flag,
        range: None,
        unit: None,
        section: Section::Gpu,
        when: When::Gpu,
        value: |c| Value::Flag(c.channels_last),
    },
];

const fn limits_f64(value: u32) -> f64 {
    value as f64
}

/// The field named `name` in JSON.
pub fn field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

/// The label of the field named `name`, or the name itself for a name that is not a field.
pub fn label_of(name: &str) -> &str {
    field(name).map_or(name, |f| f.label)
}

impl Field {
    /// True when this setting has an effect on `config` in `around`.
    pub fn applies(&self, config: &TrainConfig, around: &Surroundings) -> bool {
        self.when.holds(config, around)
    }

    /// The label with its unit, as the form's control is labelled: `"Input size (px)"`.
    pub fn label_with_unit(&self) -> String {
        match self.unit {
            Some(unit) if !self.label.to_lowercase().ends_with(unit) => format!("{} ({unit})", self.label),
            _ => self.label.to_string(),
        }
    }

    /// The value as a person reads it: choices and weights by their labels, flags as on/off, numbers with
    /// their unit, `null` as what it means.
    pub fn shown(&self, config: &TrainConfig) -> String {
        let with_unit = |number: String| match self.unit {
            Some(unit) => format!("{number} {unit}"),
            None => number,
        };
        match ((self.value)(config), self.kind) {
            (Value::Name(name), _) if self.name == "weights" => weights_label(&name).to_string(),
            (Value::Name(name), _) => name,
            (Value::Choice(name), Kind::Choice(options)) => {
                options().into_iter().find(|o| o.0 == name).map_or(name, |o| o.1).to_string()
            }
            (Value::Choice(name), _) => name.to_string(),
            (Value::Flag(on), _) => String::from(if on { "on" } else { "off" }),
            (Value::Whole(Some(n)), _) => with_unit(n.to_string()),
            (Value::Decimal(Some(x)), _) => with_unit(x.to_string()),
            (Value::Whole(None) | Value::Decimal(None), Kind::Whole { empty } | Kind::Decimal { empty }) => {
                empty.unwrap_or("none").to_string()
            }
            (Value::Whole(None) | Value::Decimal(None), _) => "none".to_string(),
        }
    }

    /// The problem with this field in `config`, if any: outside its range, or breaking the field's own rule.
    fn problem(&self, config: &TrainConfig) -> Option<ConfigError> {
        let value = (self.value)(config);
        let out_of_range = match (self.range, value.number()) {
            (Some(range), Some(number)) if !range.contains(number) => {
                let unit = self.unit.map_or(String::new(), |unit| format!(" {unit}"));
                Some(format!("must be {}{unit}, got {}", range.phrase(), shown_number(&value)))
            }
            _ => None,
        };
        if let Some(sentence) = missing(self.name, config) {
            return Some(ConfigError { field: self.name, message: sentence.to_string() });
        }
        let why = out_of_range.or_else(|| rule(self.name, config))?;
        Some(ConfigError { field: self.name, message: format!("{} {why}", self.label) })
    }
}

/// The label of a [`TrainConfig::weights`] value: `"none"` and `"imagenet"` by what they are, a file by its
/// name.
pub fn weights_label(weights: &str) -> &str {
    match weights {
        defaults::WEIGHTS_NONE => "None (random)",
        defaults::WEIGHTS_IMAGENET => "ImageNet",
        file => file,
    }
}

fn shown_number(value: &Value) -> String {
    match value {
        Value::Whole(Some(n)) => n.to_string(),
        Value::Decimal(Some(x)) => x.to_string(),
        _ => String::new(),
    }
}

/// A required choice left empty, said as what to do: "Dataset must not be empty" reads like code.
fn missing(name: &str, c: &TrainConfig) -> Option<&'static str> {
    (name == "dataset" && c.dataset.is_empty())
        .then_some("Choose a dataset to train on: pick one in the Dataset menu, or upload a zip of images first")
}

/// A field's rule beyond its range, as the end of a sentence that starts with its label.
fn rule(name: &str, c: &TrainConfig) -> Option<String> {
    // Zero always fits, and an Epochs out of its own range is Epochs' problem alone: one bad value, one error.
    let fewer_than_epochs = |value: u32| {
        (value > 0 && c.epochs > 0 && value >= c.epochs)
            .then(|| format!("must be fewer than Epochs ({}), got {value}", c.epochs))
    };
    match name {
        "dataset" => check_dataset_reference(&c.dataset).err(),
        "weights" => weights_rule(&c.weights),
        "mode" => (c.mode != FineTuneMode::Full && c.weights == defaults::WEIGHTS_NONE).then(|| {
            format!(
                "\"{}\" needs pretrained starting weights: with random weights the frozen backbone never learns \
                 anything",
                c.mode.label()
            )
        }),
        "frozen_epochs" => fewer_than_epochs(c.frozen_epochs),
        "warmup_epochs" => fewer_than_epochs(c.warmup_epochs),
        _ => None,
    }
}

fn weights_rule(weights: &str) -> Option<String> {
    if weights == defaults::WEIGHTS_NONE || weights == defaults::WEIGHTS_IMAGENET {
        return None;
    }
    check_weights_name(weights)
        .err()
        .map(|why| format!("must be \"none\", \"imagenet\" or a file in the weights folder: the name {why}"))
}

/// Every problem with `config`, one per offending field, in form order. Settings that do not apply to
/// `config` are not judged; those that depend on the server or the dataset are (see [`Surroundings::ANY`]).
pub(crate) fn problems(config: &TrainConfig) -> Vec<ConfigError> {
    FIELDS
        .iter()
        .filter(|field| field.applies(config, &Surroundings::ANY))
        .filter_map(|field| field.problem(config))
        .collect()
}

/// The settings table of `docs/API.md`: one row per field with its JSON name, label, default, range,
/// when it applies and what it does. Defaults come from `TrainConfig::default()`.
pub fn markdown_table() -> String {
    let defaults = TrainConfig::default();
    let mut table =
        String::from("| field | label | default | accepts | applies | what it does |\n|---|---|---|---|---|---|\n");
    for field in &FIELDS {
        let default = match (field.value)(&defaults) {
            Value::Name(name) if name.is_empty() => "(required)".to_string(),
            Value::Name(name) => format!("`\"{name}\"`"),
            Value::Choice(name) => format!("`\"{name}\"`"),
            Value::Flag(on) => on.to_string(),
            Value::Whole(None) | Value::Decimal(None) => "null".to_string(),
            number => shown_number(&number),
        };
        table.push_str(&format!(
            "| `{}` | {} | {default} | {} | {} | {} |\n",
            field.name,
            field.label_with_unit(),
            accepts(field),
            field.when.describe(),
            field.help
        ));
    }
    table
}

/// What a field accepts, in words, for the docs table.
fn accepts(field: &Field) -> String {
    let range = field.range.map(|r| r.phrase());
    match field.kind {
        Kind::Name if field.name == "weights" => {
            "`\"none\"`, `\"imagenet\"` or a `.safetensors`, `.pth` or `.pt` file name".to_string()
        }
        Kind::Name => "a dataset name".to_string(),
        Kind::Flag => "true or false".to_string(),
        Kind::Choice(options) => {
            options().into_iter().map(|(name, label)| format!("`\"{name}\"`: {label}")).collect::<Vec<_>>().join("; ")
        }
        Kind::Whole { empty } | Kind::Decimal { empty } => {
            let number = if matches!(field.kind, Kind::Whole { .. }) { "whole number" } else { "number" };
            let range = range.map_or(format!("any {number}"), |r| format!("a {number} {r}"));
            match empty {
                Some(meaning) => format!("{range}, or null for {meaning}"),
                None => range,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_config_field_is_in_the_table_once_in_json_order_of_the_form() {
        let json = serde_json::to_value(TrainConfig::default()).unwrap();
        let names: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(names.len(), FIELDS.len(), "a TrainConfig field is missing from FIELDS");
        for field in &FIELDS {
            assert!(names.contains(&field.name), "{} is not a TrainConfig field", field.name);
            assert_eq!(FIELDS.iter().filter(|f| f.name == field.name).count(), 1, "{}", field.name);
        }
    }

    #[test]
    fn one_bad_value_is_one_problem_on_the_field_that_holds_it() {
        let base = TrainConfig { dataset: "digits".into(), ..TrainConfig::default() };
        let zero_epochs = TrainConfig { epochs: 0, ..base.clone() };
        let fields: Vec<&str> = zero_epochs.problems().iter().map(|p| p.field).collect();
        assert_eq!(fields, ["epochs"], "Epochs 0 blames only Epochs");
        let long_warm_up = TrainConfig { epochs: 3, warmup_epochs: 3, ..base.clone() };
        let fields: Vec<&str> = long_warm_up.problems().iter().map(|p| p.field).collect();
        assert_eq!(fields, ["warmup_epochs"], "a warm-up as long as the run is still refused");
        assert!(TrainConfig { epochs: 3, warmup_epochs: 0, ..base }.problems().is_empty());
    }

    #[test]
    fn every_field_has_a_label_and_a_help_sentence_without_identifiers() {
        for field in &FIELDS {
            assert!(!field.label.is_empty() && field.label != field.name, "{}", field.name);
            assert!(field.help.ends_with('.') && field.help.len() > 20, "{}: {}", field.name, field.help);
            for words in [field.label, field.help] {
                assert!(!words.contains('_'), "{}: {words}", field.name);
            }
        }
    }

    #[test]
    fn every_value_is_read_as_its_json() {
        let config = TrainConfig {
            grad_clip_norm: Some(1.5),
            early_stopping_patience: Some(3),
            schedule: Schedule::OneCycle,
            ..TrainConfig::for_dataset("tiny")
        };
        let json = serde_json::to_value(&config).unwrap();
        for field in &FIELDS {
            let expected = &json[field.name];
            let read = match (field.value)(&config) {
                Value::Name(name) => serde_json::json!(name),
                Value::Choice(name) => serde_json::json!(name),
                Value::Flag(on) => serde_json::json!(on),
                Value::Whole(n) => serde_json::json!(n),
                Value::Decimal(x) => serde_json::json!(x),
            };
            assert_eq!(&read, expected, "{}", field.name);
        }
    }

    #[test]
    fn choice_names_are_the_serde_names() {
        fn check<T: Choice + serde::Serialize + std::fmt::Debug>() {
            for &(value, name, label) in T::CHOICES {
                assert_eq!(serde_json::to_value(value).unwrap(), serde_json::json!(name));
                assert_eq!((T::from_name(name), value.label()), (Some(value), label));
            }
        }
        check::<Normalization>();
        check::<FineTuneMode>();
        check::<OptimizerKind>();
        check::<Schedule>();
    }

    /// A config where every field applies, so each range is judged.
    fn everything_applies() -> TrainConfig {
        TrainConfig {
            epochs: 5,
            mode: FineTuneMode::TwoPhase,
            weights: defaults::WEIGHTS_IMAGENET.into(),
            schedule: Schedule::Step,
            grad_clip_norm: Some(1.0),
            early_stopping_patience: Some(2),
            ..TrainConfig::for_dataset("tiny")
        }
    }

    /// Sets a number field of `config` by its JSON name, through serde like a request would; `None` when
    /// the number cannot be written as the field's type (a negative whole number).
    fn with_number(config: &TrainConfig, field: &Field, number: f64) -> Option<TrainConfig> {
        let mut json = serde_json::to_value(config).unwrap();
        json[field.name] = match field.kind {
            Kind::Whole { .. } => serde_json::json!(number as i64),
            _ => serde_json::json!(number),
        };
        serde_json::from_value(json).ok()
    }

    /// Values at each end of `range`, with whether the range takes them.
    fn edges(range: Range) -> Vec<(f64, bool)> {
        let mut samples = Vec::new();
        match range.min {
            Bound::Inclusive(x) => samples.extend([(x, true), (x - 1.0, false)]),
            Bound::Exclusive(x) => samples.extend([(x, false), (x + 0.5, true)]),
            Bound::Open => {}
        }
        match range.max {
            Bound::Inclusive(x) => samples.extend([(x, true), (x + 1.0, false)]),
            Bound::Exclusive(x) => samples.extend([(x, false), (x - 0.5, true)]),
            Bound::Open => {}
        }
        samples
    }

    #[test]
    fn the_ranges_are_the_rules_that_problems_applies() {
        let base = everything_applies();
        assert_eq!(base.problems(), vec![]);
        for field in FIELDS.iter() {
            let Some(range) = field.range else { continue };
            for (number, allowed) in edges(range) {
                let Some(config) = with_number(&base, field, number) else { continue };
                let mine: Vec<ConfigError> = config.problems().into_iter().filter(|p| p.field == field.name).collect();
                assert_eq!(mine.is_empty(), allowed, "{} = {number}: {mine:?}", field.name);
                if let Some(problem) = mine.first() {
                    let phrase = format!("{} must be {}", field.label, range.phrase());
                    assert!(problem.message.starts_with(&phrase), "{}", problem.message);
                }
            }
        }
    }

    #[test]
    fn messages_use_labels_never_json_names() {
        let config = TrainConfig { batch_size: 0, ..TrainConfig::for_dataset("tiny") };
        assert_eq!(config.validate().unwrap_err().message, "Batch size must be between 1 and 4096, got 0");
        let config = TrainConfig { input_size: 7, ..TrainConfig::for_dataset("tiny") };
        assert_eq!(config.validate().unwrap_err().message, "Input size must be between 32 and 224 px, got 7");
        let config = TrainConfig { mode: FineTuneMode::TwoPhase, ..TrainConfig::for_dataset("tiny") };
        let message = config.validate().unwrap_err().message;
        assert!(message.starts_with("Fine-tune mode \"Two-phase: head, then all layers\" needs"), "{message}");
        let unchosen = TrainConfig { dataset: String::new(), ..TrainConfig::for_dataset("tiny") };
        let message = unchosen.validate().unwrap_err().message;
        assert!(message.starts_with("Choose a dataset to train on: pick one in the Dataset menu"), "{message}");
        let mut broken = everything_applies();
        broken.epochs = 0;
        broken.batch_size = 0;
        broken.gamma = 2.0;
        broken.dataset = String::new();
        for problem in broken.problems() {
            assert!(!problem.message.contains('_'), "{}", problem.message);
            assert!(problem.message.contains(label_of(problem.field)), "{}", problem.message);
        }
    }

    #[test]
    fn settings_that_do_not_apply_are_not_judged() {
        let constant = TrainConfig { step_size: 0, gamma: 0.0, ..TrainConfig::for_dataset("tiny") };
        assert_eq!(constant.problems(), vec![]);
        let step = TrainConfig { schedule: Schedule::Step, ..constant };
        let fields: Vec<&str> = step.problems().iter().map(|p| p.field).collect();
        assert_eq!(fields, ["step_size", "gamma"]);
    }

    #[test]
    fn applies_follows_the_mode_the_schedule_the_optimizer_and_the_surroundings() {
        let applies =
            |name: &str, config: &TrainConfig, around: Surroundings| field(name).unwrap().applies(config, &around);
        let cpu = Surroundings { gpu: false, held_out_test: false };
        let base = TrainConfig::for_dataset("tiny");
        assert!(!applies("step_size", &base, cpu));
        assert!(applies("step_size", &TrainConfig { schedule: Schedule::Step, ..base.clone() }, cpu));
        assert!(!applies("frozen_epochs", &base, cpu));
        assert!(applies("frozen_epochs", &TrainConfig { mode: FineTuneMode::TwoPhase, ..base.clone() }, cpu));
        assert!(!applies("backbone_lr_scale", &TrainConfig { mode: FineTuneMode::Frozen, ..base.clone() }, cpu));
        assert!(applies("momentum", &base, cpu));
        assert!(!applies("nesterov", &TrainConfig { optimizer: OptimizerKind::Adamw, ..base.clone() }, cpu));
        assert!(!applies("warmup_epochs", &TrainConfig { schedule: Schedule::OneCycle, ..base.clone() }, cpu));
        assert!(!applies("mixed_precision", &base, cpu));
        assert!(applies("mixed_precision", &base, Surroundings { gpu: true, ..cpu }));
        assert!(!applies("validation_fraction", &base, cpu));
        assert!(applies("validation_fraction", &base, Surroundings { held_out_test: true, ..cpu }));
        assert!(applies("epochs", &base, cpu));
    }

    #[test]
    fn values_are_shown_with_labels_units_and_what_null_means() {
        let config = TrainConfig {
            mode: FineTuneMode::TwoPhase,
            normalization: Normalization::Half,
            weights: "imagenet".into(),
            nesterov: true,
            ..TrainConfig::for_dataset("tiny")
        };
        let shown = |name: &str| field(name).unwrap().shown(&config);
        assert_eq!(shown("mode"), "Two-phase: head, then all layers");
        assert_eq!(shown("normalization"), "0.5 mean and spread (seed recipe)");
        assert_eq!(shown("weights"), "ImageNet");
        assert_eq!(shown("nesterov"), "on");
        assert_eq!(shown("input_size"), "32 px");
        assert_eq!(shown("grad_clip_norm"), "no clipping");
        assert_eq!(shown("early_stopping_patience"), "never stop early");
        assert_eq!(field("weights").unwrap().shown(&TrainConfig::for_dataset("d")), "None (random)");
    }

    #[test]
    fn the_docs_carry_the_generated_settings_table() {
        let docs = include_str!("../../docs/API.md");
        let table = markdown_table();
        assert!(
            docs.contains(&table),
            "docs/API.md's settings table differs from the field table; replace it with:\n{table}"
        );
    }
}
